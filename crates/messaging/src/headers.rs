//! The AMQP headers Foxflow reads and writes.

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// How many times the message has been retried after a transient failure.
pub const ATTEMPT: &str = "x-attempt";
/// Why a message was parked.
pub const REASON: &str = "x-reason";
/// The same in French, when Foxflow has it (docs/api.md "Languages"); a
/// reader without it uses `x-reason` for both languages.
pub const REASON_FR: &str = "x-reason-fr";
/// W3C trace context of the code that published the message.
pub const TRACEPARENT: &str = "traceparent";

pub fn get_i64(headers: Option<&FieldTable>, key: &str) -> Option<i64> {
    match headers?.inner().get(key)? {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        _ => None,
    }
}

pub fn get_str(headers: Option<&FieldTable>, key: &str) -> Option<String> {
    match headers?.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Strings go in as long strings: short strings are tagged "internal use"
/// by RabbitMQ and cannot exceed 255 bytes.
pub fn set_str(table: &mut FieldTable, key: &str, value: &str) {
    table.insert(
        ShortString::from(key),
        AMQPValue::LongString(LongString::from(value.as_bytes().to_vec())),
    );
}

pub fn set_i64(table: &mut FieldTable, key: &str, value: i64) {
    table.insert(ShortString::from(key), AMQPValue::LongLongInt(value));
}
