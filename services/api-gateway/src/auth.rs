//! Bearer-token authentication as an extractor: a handler that takes
//! [`Caller`] cannot run for an anonymous request.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use foxflow_storage::StorageError;
use foxflow_storage::auth::{Principal, Role};
use std::future::Future;
use std::pin::Pin;

#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.0.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(foxflow_domain::text!(
                "cette action demande le rôle `{role}`",
                "this action needs the `{role}` role",
                role = role.as_str()
            )))
        }
    }

    /// Staff see only what they own; viewers and admins see everything.
    pub fn owner_filter(&self) -> Option<uuid::Uuid> {
        (self.0.role == Role::Staff).then_some(self.0.user_id)
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|t| t.trim().to_owned());
        Box::pin(async move {
            let state = state.ok_or(ApiError::Unavailable)?;
            let token = token.filter(|t| !t.is_empty()).ok_or(ApiError::Unauthorized)?;
            let mut conn = foxflow_storage::pool::conn(&state.pool).await?;
            match foxflow_storage::auth::authenticate(&mut conn, &token).await {
                Ok(p) => Ok(Caller(p)),
                Err(StorageError::NotFound) => Err(ApiError::Unauthorized),
                Err(e) => Err(e.into()),
            }
        })
    }
}
