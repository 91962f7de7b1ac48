//! `(method, path)` → `Route`, parsed once per request.

use hyper::Method;

/// Every endpoint of the SU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Info,
    Write,
    Timestamp,
    Health,
    Metrics,
    /// `GET /{id}`: a message, an assignment, or a process's schedule.
    ById(String),
    Process(String),
    Latest(String),
    /// `GET /{process}/stream`: the schedule as Server-Sent Events (`http/live.rs`).
    Stream(String),
    /// `GET /~su/log`: the change feed a standby follows (paths under `/~` never collide with
    /// an id, DECISIONS 18).
    Feed,
    /// `GET /~su/process-count`: how many processes this SU holds, for routers.
    ProcessCount,
    Preflight,
    NotFound,
}

/// Matches paths exactly, in the reference's order.
pub fn route(method: &Method, path: &str) -> Route {
    if method == Method::OPTIONS {
        return Route::Preflight;
    }
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::GET, [""]) => Route::Info,
        (&Method::POST, [""]) => Route::Write,
        (&Method::GET, ["timestamp"]) => Route::Timestamp,
        (&Method::GET, ["health"]) => Route::Health,
        (&Method::GET, ["metrics"]) => Route::Metrics,
        (&Method::GET, ["~su", "log"]) => Route::Feed,
        (&Method::GET, ["~su", "process-count"]) => Route::ProcessCount,
        (&Method::GET, [id]) if !id.is_empty() => Route::ById((*id).to_string()),
        (&Method::GET, ["processes", id]) if !id.is_empty() => Route::Process((*id).to_string()),
        (&Method::GET, [id, "latest"]) if !id.is_empty() => Route::Latest((*id).to_string()),
        (&Method::GET, [id, "stream"]) if !id.is_empty() => Route::Stream((*id).to_string()),
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let check = |method: Method, path: &str, expected: Route| {
            assert_eq!(route(&method, path), expected, "{method} {path}");
        };
        check(Method::GET, "/", Route::Info);
        check(Method::POST, "/", Route::Write);
        check(Method::GET, "/timestamp", Route::Timestamp);
        check(Method::GET, "/health", Route::Health);
        check(Method::GET, "/metrics", Route::Metrics);
        check(Method::GET, "/~su/log", Route::Feed);
        check(Method::GET, "/~su/process-count", Route::ProcessCount);
        check(Method::GET, "/abc", Route::ById("abc".into()));
        check(Method::GET, "/processes/abc", Route::Process("abc".into()));
        check(Method::GET, "/abc/latest", Route::Latest("abc".into()));
        check(Method::GET, "/abc/stream", Route::Stream("abc".into()));
        check(Method::GET, "/abc/", Route::NotFound);
        check(Method::POST, "/abc", Route::NotFound);
        check(Method::DELETE, "/", Route::NotFound);
        check(Method::GET, "/a/b/c", Route::NotFound);
        check(Method::OPTIONS, "/x", Route::Preflight);
    }
}
