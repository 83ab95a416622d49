use super::*;

fn msg(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = BytesMut::new();
    put(&mut out, tag, parts);
    out.to_vec()
}

fn parse(name: &str, query: &str) -> Vec<u8> {
    msg(b'P', &[name.as_bytes(), b"\0", query.as_bytes(), b"\0\0\0"])
}

fn bind(statement: &str) -> Vec<u8> {
    msg(b'B', &[b"\0", statement.as_bytes(), b"\0", b"\0\0\0\0\0\0"])
}

fn startup() -> Vec<u8> {
    let body = b"\0\x03\0\0user\0u\0\0";
    let mut m = u32::try_from(4 + body.len()).unwrap().to_be_bytes().to_vec();
    m.extend_from_slice(body);
    m
}

/// Feeds `chunks` through the frontend side, one call each, and returns what went out.
fn front(r: &mut Rewriter, chunks: &[&[u8]]) -> Vec<u8> {
    let (mut input, mut out) = (BytesMut::new(), BytesMut::new());
    for c in chunks {
        input.extend_from_slice(c);
        r.frontend(&mut input, &mut out).unwrap();
    }
    assert!(input.is_empty(), "left unparsed: {input:?}");
    out.to_vec()
}

fn back(r: &mut Rewriter, bytes: &[u8]) -> Vec<u8> {
    let (mut input, mut out) = (BytesMut::from(bytes), BytesMut::new());
    r.backend(&mut input, &mut out).unwrap();
    out.to_vec()
}

const PARSE_COMPLETE: &[u8] = b"1\0\0\0\x04";
const BIND_COMPLETE: &[u8] = b"2\0\0\0\x04";
const READY: &[u8] = b"Z\0\0\0\x05I";

fn started() -> Rewriter {
    let mut r = Rewriter::default();
    front(&mut r, &[&startup()]);
    r
}

#[test]
fn a_named_statement_becomes_the_unnamed_one_parsed_in_every_batch_that_uses_it() {
    let mut r = started();
    let sync = msg(b'S', &[]);
    let describe = msg(b'D', &[b"Ss7\0"]);
    // prepare: Parse s7 / Describe s7 / Sync
    let out = front(&mut r, &[&parse("s7", "SELECT 1"), &describe, &sync]);
    let expected = [parse("", "SELECT 1"), msg(b'D', &[b"S\0"]), sync.clone()].concat();
    assert_eq!(out, expected);
    assert_eq!(
        back(&mut r, &[PARSE_COMPLETE, READY].concat()),
        [PARSE_COMPLETE, READY].concat()
    );
    // query: Bind s7 / Execute / Sync, in two writes
    let execute = msg(b'E', &[b"\0\0\0\0\0"]);
    let out = front(
        &mut r,
        &[&bind("s7")[..3], &[&bind("s7")[3..], &execute, &sync].concat()],
    );
    assert_eq!(
        out,
        [parse("", "SELECT 1"), bind(""), execute.clone(), sync.clone()].concat()
    );
    // The injected Parse's reply is not handed to the client.
    assert_eq!(
        back(&mut r, &[PARSE_COMPLETE, BIND_COMPLETE, READY].concat()),
        [BIND_COMPLETE, READY].concat()
    );
    // close: forgotten, the unnamed statement closed instead
    let out = front(&mut r, &[&msg(b'C', &[b"Ss7\0"]), &sync]);
    assert_eq!(out, [msg(b'C', &[b"S\0"]), sync.clone()].concat());
    assert!(r.statements.is_empty());
    // A name no longer known goes out as it came, for the server to refuse.
    assert_eq!(front(&mut r, &[&bind("s7")]), bind("s7"));
}

#[test]
fn unnamed_statements_and_simple_queries_pass_unchanged() {
    let mut r = started();
    let batch = [
        parse("", "SELECT $1"),
        bind(""),
        msg(b'E', &[b"\0\0\0\0\0"]),
        msg(b'S', &[]),
    ]
    .concat();
    assert_eq!(front(&mut r, &[&batch]), batch);
    let query = msg(b'Q', &[b"BEGIN\0"]);
    assert_eq!(front(&mut r, &[&query]), query);
    let replies = [PARSE_COMPLETE, BIND_COMPLETE, READY, READY].concat();
    assert_eq!(back(&mut r, &replies), replies);
    assert!(r.replies.is_empty());
}

#[test]
fn an_error_ends_the_batch_and_its_pending_parses() {
    let mut r = started();
    let sync = msg(b'S', &[]);
    front(&mut r, &[&parse("s1", "SELECT 1"), &sync]);
    back(&mut r, &[PARSE_COMPLETE, READY].concat());
    // Two batches in flight: the first fails at its injected Parse.
    front(&mut r, &[&bind("s1"), &sync, &bind("s1"), &sync]);
    let error = msg(b'E', &[b"SERROR\0\0"]);
    assert_eq!(
        back(&mut r, &[error.clone(), READY.to_vec()].concat()),
        [error, READY.to_vec()].concat()
    );
    // The second batch's injected ParseComplete is still recognised.
    assert_eq!(
        back(&mut r, &[PARSE_COMPLETE, BIND_COMPLETE, READY].concat()),
        [BIND_COMPLETE, READY].concat()
    );
    assert!(r.replies.is_empty());
}

#[test]
fn tls_turns_the_outer_stream_into_a_pipe() {
    let mut r = Rewriter::default();
    let ssl_request = [0, 0, 0, 8, 4, 210, 22, 47];
    assert_eq!(front(&mut r, &[&ssl_request]), ssl_request);
    // `S`, then a TLS record that happens to look like anything at all.
    assert_eq!(back(&mut r, b"S\x16\x03\x01"), b"S\x16\x03\x01");
    assert_eq!(front(&mut r, &[b"\x16\x03\x01\x02"]), b"\x16\x03\x01\x02");
    // `N`: plaintext goes on, the startup message comes next.
    let mut r = Rewriter::default();
    front(&mut r, &[&ssl_request]);
    assert_eq!(back(&mut r, b"N"), b"N");
    assert_eq!(front(&mut r, &[&startup()]), startup());
    assert!(r.typed && !r.inert);
}

#[test]
fn a_broken_length_is_an_error_not_a_hang() {
    let mut r = started();
    let (mut input, mut out) = (BytesMut::from(&b"S\0\0\0\x01"[..]), BytesMut::new());
    assert_eq!(
        r.frontend(&mut input, &mut out).unwrap_err().kind(),
        io::ErrorKind::InvalidData
    );
}

/// Against the real server: tokio-postgres through the rewriter prepares, pipelines, fails and
/// recovers, and the server never holds a named statement.
#[tokio::test]
async fn tokio_postgres_through_the_rewriter_leaves_no_named_statement() {
    let url =
        std::env::var("FOX_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let config: tokio_postgres::Config = format!("{url}/postgres").parse().unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let socket = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .unwrap();
    let stream = Unnamed::new(socket, Rewriter::default());
    let (client, connection) = config.connect_raw(stream, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);

    let add = client.prepare("SELECT $1::int8 + 1").await.unwrap();
    let (a, b) = tokio::join!(
        client.query_one(&add, &[&41_i64]),
        client.query_one(&add, &[&1_i64])
    );
    assert_eq!(
        (a.unwrap().get::<_, i64>(0), b.unwrap().get::<_, i64>(0)),
        (42, 2)
    );
    let failing = client.prepare("SELECT 1 / $1::int4").await.unwrap();
    assert!(client.query_one(&failing, &[&0_i32]).await.is_err());
    assert_eq!(
        client.query_one(&add, &[&9_i64]).await.unwrap().get::<_, i64>(0),
        10
    );
    let named: i64 = client
        .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(named, 0);
    drop(add);
    drop(failing);
    // A transaction, as diesel runs them.
    client.batch_execute("BEGIN").await.unwrap();
    let row = client
        .query_one("SELECT txid_current_if_assigned() IS NULL", &[])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    client.batch_execute("COMMIT").await.unwrap();
}
