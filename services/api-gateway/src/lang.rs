//! The language of a request (docs/api.md "Languages"): English when its
//! `Accept-Language` prefers `en`, French otherwise. Codes never change
//! with it; messages do.

use std::future::{Ready, ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::ACCEPT_LANGUAGE;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest};
use foxflow_domain::Lang;

use foxflow_domain::Text;

use crate::error::ApiError;

/// A message around a library's own (English) words: French says what
/// went wrong and quotes them, English gives them as they are.
pub fn detail(fr: &str, e: &impl std::fmt::Display) -> Text {
    Text::new(format!("{fr} : {e}"), e.to_string())
}

/// The request's language, as an extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLang(pub Lang);

impl RequestLang {
    pub fn of(req: &HttpRequest) -> Lang {
        req.headers()
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map_or(Lang::Fr, Lang::from_accept_language)
    }
}

impl FromRequest for RequestLang {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(RequestLang(RequestLang::of(req))))
    }
}

/// Every error answer is built in French ([`ApiError`]'s `error_response`);
/// for a request in English, this re-renders an [`ApiError`] in English,
/// keeping its status, code, details and headers.
pub async fn localize_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let lang = RequestLang::of(req.request());
    let res = next.call(req).await?.map_into_boxed_body();
    if lang == Lang::Fr {
        return Ok(res);
    }
    let english = res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
        .map(|e| e.render(Lang::En));
    Ok(match english {
        Some(rendered) => res.into_response(rendered),
        None => res,
    })
}
