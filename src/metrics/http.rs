//! The smallest HTTP/1.1 the metrics endpoint needs (RFC 9112): read one
//! request head, answer, close. Parsing is pure and total — any bytes give
//! a verdict, never a panic — and bounded: a head longer than
//! [`MAX_HEAD`] is refused without reading further.

/// The longest request head (request line and header fields) accepted.
pub const MAX_HEAD: usize = 8192;

/// A request head, borrowed from the bytes read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method token, as sent (methods are case-sensitive, §3.1).
    pub method: &'a str,
    /// The target's path, without the query.
    pub path: &'a str,
}

/// Why no request could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The head has not ended yet: read more.
    Incomplete,
    /// The head exceeds [`MAX_HEAD`].
    TooLarge,
    /// Not an HTTP/1.x request head.
    Malformed,
}

/// Parse a request head from the bytes read so far.
pub fn parse(bytes: &[u8]) -> Result<Request<'_>, HeadError> {
    let Some(end) = head_end(bytes) else {
        return Err(if bytes.len() >= MAX_HEAD {
            HeadError::TooLarge
        } else {
            HeadError::Incomplete
        });
    };
    // The head and its empty line must fit the reader's buffer.
    if end > MAX_HEAD - 4 {
        return Err(HeadError::TooLarge);
    }
    let head = std::str::from_utf8(&bytes[..end]).map_err(|_| HeadError::Malformed)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().ok_or(HeadError::Malformed)?;
    // §3: method SP request-target SP HTTP-version, single spaces.
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(HeadError::Malformed);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HeadError::Malformed);
    }
    // Origin form only (§3.2.1): a proxy's absolute form has no business
    // here.
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(HeadError::Malformed);
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    // §5.1: a field line is name ":" value; the name is a token. The
    // values are of no interest, but a broken head is refused whole.
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, _) = line.split_once(':').ok_or(HeadError::Malformed)?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(HeadError::Malformed);
        }
    }
    Ok(Request { method, path })
}

/// Where the head ends (just before its empty line), if it has: CRLF CRLF,
/// or bare LFs, which §2.2 lets a server accept.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let limit = bytes.len().min(MAX_HEAD + 4);
    let window = &bytes[..limit];
    let crlf = window.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = window.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What the endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`.
    Metrics,
    /// `GET /healthz`.
    Health,
    /// Any other path.
    NotFound,
    /// A known path with a method other than GET or HEAD.
    MethodNotAllowed,
    /// A head that is not HTTP, or too large.
    BadRequest,
}

/// The route of a parsed head, and whether the answer has no body (HEAD).
pub fn route(request: Result<Request<'_>, HeadError>) -> (Route, bool) {
    let Ok(request) = request else {
        return (Route::BadRequest, false);
    };
    let head_only = request.method == "HEAD";
    let known = match request.path {
        "/metrics" => Route::Metrics,
        "/healthz" => Route::Health,
        _ => return (Route::NotFound, head_only),
    };
    if request.method == "GET" || head_only {
        (known, head_only)
    } else {
        (Route::MethodNotAllowed, false)
    }
}

/// A complete response; the connection closes after it.
pub fn response(status: u16, content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_request_parses() {
        let head = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9701\r\nAccept: */*\r\n\r\n";
        let request = parse(head).unwrap();
        assert_eq!(
            request,
            Request {
                method: "GET",
                path: "/metrics"
            }
        );
        assert_eq!(route(Ok(request)), (Route::Metrics, false));
        let query = parse(b"GET /metrics?name[]=x HTTP/1.0\n\n").unwrap();
        assert_eq!(query.path, "/metrics");
        assert_eq!(
            route(parse(b"HEAD /healthz HTTP/1.1\r\n\r\n")),
            (Route::Health, true)
        );
    }

    #[test]
    fn other_paths_are_404_and_other_methods_405() {
        for path in ["/", "/metrics/", "/Metrics", "/favicon.ico", "/healthz/x"] {
            let head = format!("GET {path} HTTP/1.1\r\n\r\n");
            assert_eq!(route(parse(head.as_bytes())).0, Route::NotFound, "{path}");
        }
        for method in ["POST", "PUT", "DELETE", "get"] {
            let head = format!("{method} /metrics HTTP/1.1\r\n\r\n");
            assert_eq!(route(parse(head.as_bytes())).0, Route::MethodNotAllowed);
        }
    }

    #[test]
    fn a_partial_head_asks_for_more_and_an_endless_one_is_refused() {
        assert_eq!(parse(b""), Err(HeadError::Incomplete));
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\n"),
            Err(HeadError::Incomplete)
        );
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD, b'a');
        assert_eq!(parse(&long), Err(HeadError::TooLarge));
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse(&long), Err(HeadError::TooLarge));
    }

    #[test]
    fn malformed_heads_are_bad_requests() {
        for head in [
            &b"\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2\r\n\r\n",
            b"GET http://x/metrics HTTP/1.1\r\n\r\n",
            b"GET /met\x01rics HTTP/1.1\r\n\r\n",
            b"G(T /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\n\xff\xfe: x\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
        ] {
            assert_eq!(parse(head), Err(HeadError::Malformed), "{head:?}");
            assert_eq!(route(parse(head)), (Route::BadRequest, false));
        }
    }

    #[test]
    fn responses_carry_length_and_close() {
        let r = String::from_utf8(response(200, "text/plain", "ok\n", false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Length: 3\r\n") && r.contains("Connection: close\r\n"));
        assert!(r.ends_with("\r\n\r\nok\n"));
        let head = String::from_utf8(response(200, "text/plain", "ok\n", true)).unwrap();
        assert!(
            head.ends_with("Content-Length: 3\r\nConnection: close\r\n\r\n"),
            "{head}"
        );
        let r = String::from_utf8(response(405, "text/plain", "", false)).unwrap();
        assert!(r.contains("Allow: GET, HEAD\r\n"), "{r}");
    }
}
