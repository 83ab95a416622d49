//! Users and API tokens. Only a SHA-256 of a token is stored.

use crate::schema::{api_tokens, users};
use crate::{Result, StorageError};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What a token lets its bearer do (docs/spec.md §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Staff,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = foxflow_domain::Text;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "staff" => Ok(Role::Staff),
            "admin" => Ok(Role::Admin),
            other => Err(foxflow_domain::text!(
                "rôle inconnu « {other} » (attendu : admin, staff ou viewer)",
                "unknown role `{other}` (expected admin, staff or viewer)"
            )),
        }
    }
}

/// The caller behind a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub name: String,
    pub role: Role,
}

/// Tokens are 32 random bytes, shown once as `fox_` + hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("fox_{}", hex::encode(bytes))
}

pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates the user `name` with `role` and returns its first token. A name
/// already taken is a `Conflict`, revoked tokens or not: issuing another
/// token to an existing user, or changing its role, is [`rotate_token`]'s
/// job, so that a role change can never silently widen tokens already
/// handed out.
pub async fn create_token(conn: &mut AsyncPgConnection, name: &str, role: Role) -> Result<String> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        let user_id: Option<Uuid> = diesel::insert_into(users::table)
            .values((
                users::id.eq(Uuid::now_v7()),
                users::name.eq(name),
                users::role.eq(role.as_str()),
            ))
            .on_conflict(users::name)
            .do_nothing()
            .returning(users::id)
            .get_result(conn)
            .await
            .optional()?;
        let user_id = user_id.ok_or_else(|| {
            StorageError::Conflict(foxflow_domain::text!(
                "l’utilisateur « {name} » existe déjà",
                "user `{name}` already exists"
            ))
        })?;
        insert_token(conn, user_id).await
    })
    .await
}

/// What [`rotate_token`] did.
#[derive(Debug)]
pub struct Rotation {
    /// The new token, the user's only live one.
    pub token: String,
    /// Live tokens revoked.
    pub revoked: usize,
    /// The role before, `None` when the user was created.
    pub previous_role: Option<Role>,
}

/// Gives `name` the role `role` (creating the user if new), revokes every
/// live token it holds and issues one new token, in one transaction: after
/// it, the only token carrying the new role is the one returned.
pub async fn rotate_token(conn: &mut AsyncPgConnection, name: &str, role: Role) -> Result<Rotation> {
    conn.transaction::<_, StorageError, _>(async |conn| {
        // Locked so that two rotations of one user run one after the other
        // and the second revokes the first's token.
        let previous: Option<String> = users::table
            .filter(users::name.eq(name))
            .select(users::role)
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let previous_role = previous
            .map(|r| r.parse::<Role>().map_err(StorageError::Conflict))
            .transpose()?;
        let user_id: Uuid = diesel::insert_into(users::table)
            .values((
                users::id.eq(Uuid::now_v7()),
                users::name.eq(name),
                users::role.eq(role.as_str()),
            ))
            .on_conflict(users::name)
            .do_update()
            .set(users::role.eq(role.as_str()))
            .returning(users::id)
            .get_result(conn)
            .await?;
        let revoked = diesel::update(api_tokens::table)
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::revoked_at.is_null())
            .set(api_tokens::revoked_at.eq(diesel::dsl::now))
            .execute(conn)
            .await?;
        let token = insert_token(conn, user_id).await?;
        Ok(Rotation {
            token,
            revoked,
            previous_role,
        })
    })
    .await
}

async fn insert_token(conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<String> {
    let token = new_token();
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(Uuid::now_v7()),
            api_tokens::user_id.eq(user_id),
            api_tokens::token_hash.eq(hash_token(&token)),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// Revokes every token of a user; returns how many were live.
pub async fn revoke_tokens(conn: &mut AsyncPgConnection, name: &str) -> Result<usize> {
    let user_ids = users::table.filter(users::name.eq(name)).select(users::id);
    Ok(diesel::update(api_tokens::table)
        .filter(api_tokens::user_id.eq_any(user_ids))
        .filter(api_tokens::revoked_at.is_null())
        .set(api_tokens::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?)
}

/// Resolves a bearer token, recording its use.
pub async fn authenticate(conn: &mut AsyncPgConnection, token: &str) -> Result<Principal> {
    let hash = hash_token(token);
    let row: Option<(Uuid, Uuid, String, String)> = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_hash.eq(&hash))
        .filter(api_tokens::revoked_at.is_null())
        .select((api_tokens::id, users::id, users::name, users::role))
        .first(conn)
        .await
        .optional()?;
    let (token_id, user_id, name, role) = row.ok_or(StorageError::NotFound)?;
    // Recorded at most once a minute, so reads do not each cost a write.
    diesel::update(api_tokens::table.find(token_id))
        .filter(
            api_tokens::last_used_at
                .is_null()
                .or(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "last_used_at < now() - interval '1 minute'",
                )),
        )
        .set(api_tokens::last_used_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    let role = role.parse().map_err(StorageError::Conflict)?;
    Ok(Principal { user_id, name, role })
}
