//! The file server against a real client: curl downloads files of 0 B to
//! 256 MiB, ranges, HEAD, conditional requests, precompressed siblings
//! (curl's `--compressed`), keep-alive, 50 parallel downloads, and path
//! traversal attempts; a raw client checks the idle rules for slow
//! readers.
//!
//! curl must be installed (`scripts/test` installs it).

mod common;

use common::Site;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs curl; returns stdout.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "120"])
        .args(args)
        .output()
        .expect("curl is not installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn crc_of(path: &Path) -> (u64, u32) {
    let data = std::fs::read(path).unwrap();
    (data.len() as u64, crc32c::crc32c(&data))
}

#[test]
fn curl_downloads_match_byte_for_byte() {
    let site = Site::new("sizes", Duration::from_secs(30));
    let out = site.base.join("out");
    for (name, len) in [
        ("empty", 0),
        ("one", 1),
        ("mib", 1 << 20),
        ("big", 256 << 20),
    ] {
        let crc = site.file(name, len);
        let code = curl(&[
            "-o",
            out.to_str().unwrap(),
            "-w",
            "%{http_code}",
            &site.url(&format!("/{name}")),
        ]);
        assert_eq!(code, "200", "{name}");
        assert_eq!(
            crc_of(&out),
            (len as u64, crc),
            "{name}: length or checksum differs"
        );
    }

    // A range of the 1 MiB file.
    let data = std::fs::read(site.root.join("mib")).unwrap();
    let url = site.url("/mib");
    let fetch_range = |range: &str| {
        let out = out.to_str().unwrap();
        curl(&["-r", range, "-o", out, "-w", "%{http_code}", &url])
    };
    assert_eq!(fetch_range("1000-2999"), "206");
    assert_eq!(crc_of(&out), (2000, crc32c::crc32c(&data[1000..3000])));
    assert_eq!(fetch_range("-10"), "206");
    assert_eq!(std::fs::read(&out).unwrap(), &data[data.len() - 10..]);

    // HEAD: the length, no body.
    let head = curl(&["-I", &site.url("/mib")]);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Length: 1048576\r\n"), "{head}");
    assert!(head.contains("Accept-Ranges: bytes\r\n"), "{head}");

    // Keep-alive: curl reuses the connection for the second transfer.
    let connects = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{num_connects},",
        &site.url("/one"),
        "-o",
        "/dev/null",
        &site.url("/mib"),
    ]);
    assert_eq!(connects, "1,0,");
}

#[test]
fn a_congestion_control_the_kernel_refuses_stops_the_start_naming_it() {
    let mut config = gyre_fileserver::FileServerConfig::new(std::env::temp_dir());
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.workers = 1;
    config.tcp_congestion = Some("no-such-cc".into());
    let err = gyre_fileserver::start(&config).expect_err("start must fail");
    let text = err.to_string();
    assert!(text.contains("TCP_CONGESTION \"no-such-cc\""), "{text}");
    // One the kernel has serves as usual.
    let site = Site::with("congestion", |c| c.tcp_congestion = Some("reno".into()));
    site.file("mib", 1 << 20);
    let code = curl(&["-o", "/dev/null", "-w", "%{http_code}", &site.url("/mib")]);
    assert_eq!(code, "200");
}

#[test]
fn statuses_for_missing_files_bad_ranges_methods_and_traversal() {
    let site = Site::new("status", Duration::from_secs(30));
    site.file("f.txt", 100);
    let code = |extra: &[&str], path: &str| {
        let mut args = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        args.extend_from_slice(extra);
        let url = site.url(path);
        args.push(&url);
        curl(&args)
    };
    assert_eq!(code(&[], "/missing"), "404");
    assert_eq!(code(&["-r", "100-"], "/f.txt"), "416");
    assert_eq!(code(&["-r", "0-0"], "/f.txt"), "206");
    assert_eq!(code(&["-X", "POST", "-d", "x=1"], "/f.txt"), "405");
    for attack in [
        "/../secret",
        "/sub/../../secret",
        "/%2e%2e/secret",
        "/%2E%2E%2Fsecret",
        "/sub/..%2f..%2fsecret",
        "/sub/%2e%2e/%2e%2e/secret",
    ] {
        assert_eq!(code(&["--path-as-is"], attack), "403", "{attack}");
    }
    // The body of a 416 says what the length is.
    let head = curl(&["-i", "-r", "500-", &site.url("/f.txt")]);
    assert!(head.contains("Content-Range: bytes */100\r\n"), "{head}");
}

/// The value of header `name` in a response head curl printed.
fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {head}"))
}

#[test]
fn conditional_requests_answer_304_412_and_if_range_as_caches_and_curl_send_them() {
    let site = Site::new("conditional", Duration::from_secs(30));
    site.file("f.txt", 100);
    // An absolute symlink is judged by an opener thread (the loop's
    // `openat2` beneath the root refuses it): the request waits for it
    // there, and its conditions are read when the file comes.
    std::os::unix::fs::symlink(site.root.join("f.txt"), site.root.join("link.txt")).unwrap();
    let dir = site.base.join("curl");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let code = |extra: &[&str], path: &str| {
        let url = site.url(path);
        let mut args = vec!["-o", out, "-w", "%{http_code}"];
        args.extend_from_slice(extra);
        args.push(&url);
        curl(&args)
    };

    let head = curl(&["-I", &site.url("/f.txt")]);
    let etag = header(&head, "ETag").to_owned();
    let modified = header(&head, "Last-Modified").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with("-64\""), "{etag}");
    let if_none_match = format!("If-None-Match: {etag}");
    for path in ["/f.txt", "/link.txt"] {
        let _ = std::fs::remove_file(out);
        assert_eq!(code(&["-H", &if_none_match], path), "304", "{path}");
        let body = std::fs::metadata(out).map_or(0, |m| m.len());
        assert_eq!(body, 0, "a 304 has no body");
        assert_eq!(code(&["-H", "If-None-Match: \"other\""], path), "200");
        // curl's -z sends If-Modified-Since.
        assert_eq!(code(&["-z", &modified], path), "304", "{path}");
        assert_eq!(code(&["-z", "Thu, 01 Jan 1970 00:00:01 GMT"], path), "200");
        assert_eq!(code(&["-H", "If-Match: \"other\""], path), "412", "{path}");
        assert_eq!(code(&["-H", &format!("If-Match: {etag}")], path), "200");
        // If-Range: the range while the file is the one named, else all.
        let if_range = format!("If-Range: {etag}");
        assert_eq!(code(&["-r", "0-9", "-H", &if_range], path), "206");
        assert_eq!(std::fs::metadata(out).unwrap().len(), 10);
        assert_eq!(code(&["-r", "0-9", "-H", "If-Range: \"old\""], path), "200");
        assert_eq!(std::fs::metadata(out).unwrap().len(), 100);
    }

    // A 304 leaves the connection ready for the next request.
    let twice = curl(&[
        "-H",
        &if_none_match,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{num_connects},",
        &site.url("/f.txt"),
        "-o",
        "/dev/null",
        &site.url("/f.txt"),
    ]);
    assert_eq!(twice, "304 1,304 0,");

    // curl's own ETag cache: saved with the first download, compared on
    // the next; a changed file is sent again.
    let tags = dir.join("etags");
    let tags = tags.to_str().unwrap();
    assert_eq!(code(&["--etag-save", tags], "/f.txt"), "200");
    assert_eq!(code(&["--etag-compare", tags], "/f.txt"), "304");
    site.file("f.txt", 101);
    assert_eq!(code(&["--etag-compare", tags], "/f.txt"), "200");
    assert_eq!(std::fs::metadata(out).unwrap().len(), 101);
}

#[test]
fn precompressed_siblings_go_to_clients_that_take_them_and_curl_unpacks_them() {
    let site = Site::with("precompressed", |config| {
        config.precompressed = vec![
            gyre_fileserver::Encoding::Brotli,
            gyre_fileserver::Encoding::Gzip,
        ];
    });
    let script: String = (0..4000).map(|i| format!("var v{i} = {i};\n")).collect();
    std::fs::write(site.root.join("app.js"), &script).unwrap();
    // gzip is essential on Debian; the Brotli sibling's bytes only need
    // to be told apart (curl is not asked to unpack them).
    let gzip = Command::new("gzip")
        .args(["-k", "-9"])
        .arg(site.root.join("app.js"))
        .status()
        .expect("gzip runs");
    assert!(gzip.success());
    std::fs::write(site.root.join("app.js.br"), b"not really brotli").unwrap();
    std::fs::write(site.root.join("plain.css"), b"p { }").unwrap();
    // Absolute symlinks: opened by an opener thread, sibling and all.
    std::os::unix::fs::symlink(site.root.join("app.js"), site.root.join("link.js")).unwrap();
    std::os::unix::fs::symlink(site.root.join("app.js.gz"), site.root.join("link.js.gz")).unwrap();
    let dir = site.base.join("curl");
    std::fs::create_dir_all(&dir).unwrap();
    let (out, heads) = (dir.join("out"), dir.join("heads"));
    let get = |extra: &[&str], path: &str| -> (String, Vec<u8>) {
        let url = site.url(path);
        let mut args = vec!["-o", out.to_str().unwrap(), "-D", heads.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(&url);
        curl(&args);
        (
            std::fs::read_to_string(&heads).unwrap(),
            std::fs::read(&out).unwrap(),
        )
    };
    let gz = std::fs::read(site.root.join("app.js.gz")).unwrap();
    assert!(gz.len() * 3 < script.len(), "the sibling is smaller");

    for path in ["/app.js", "/link.js"] {
        // curl asks for gzip and unpacks it.
        let (head, body) = get(&["--compressed", "-H", "Accept-Encoding: gzip"], path);
        assert_eq!(header(&head, "Content-Encoding"), "gzip", "{path}");
        assert_eq!(header(&head, "Content-Length"), gz.len().to_string());
        assert_eq!(header(&head, "Content-Type"), "text/javascript");
        assert_eq!(header(&head, "Vary"), "Accept-Encoding");
        assert!(header(&head, "ETag").ends_with("-gzip\""), "{head}");
        assert_eq!(body, script.as_bytes(), "{path}: unpacked, the file");
        // A client that takes nothing gets the file, still with Vary.
        let (head, body) = get(&[], path);
        assert!(
            !head.to_ascii_lowercase().contains("content-encoding"),
            "{head}"
        );
        assert_eq!(header(&head, "Vary"), "Accept-Encoding");
        assert_eq!(body, script.as_bytes());
        // gzip refused by weight: the file.
        let (head, _) = get(&["-H", "Accept-Encoding: gzip;q=0"], path);
        assert!(
            !head.to_ascii_lowercase().contains("content-encoding"),
            "{head}"
        );
        // A range is of the sibling's bytes.
        let (head, body) = get(&["-r", "0-9", "-H", "Accept-Encoding: gzip"], path);
        assert!(head.starts_with("HTTP/1.1 206"), "{head}");
        assert_eq!(body, &gz[..10]);
    }
    // The server's preference among what the client takes: br first.
    let (head, body) = get(&["-H", "Accept-Encoding: gzip, br"], "/app.js");
    assert_eq!(header(&head, "Content-Encoding"), "br");
    assert_eq!(body, b"not really brotli");
    // The symlink has no Brotli sibling of its own: gzip.
    let (head, _) = get(&["-H", "Accept-Encoding: gzip, br"], "/link.js");
    assert_eq!(header(&head, "Content-Encoding"), "gzip");
    // A file without siblings goes as it is.
    let (head, body) = get(&["-H", "Accept-Encoding: gzip, br"], "/plain.css");
    assert!(
        !head.to_ascii_lowercase().contains("content-encoding"),
        "{head}"
    );
    assert_eq!(body, b"p { }");

    // Each representation validates as itself: the gzip tag is current
    // for a gzip request and not for a plain one.
    let (head, _) = get(&["-H", "Accept-Encoding: gzip"], "/app.js");
    let tag = format!("If-None-Match: {}", header(&head, "ETag"));
    let code = |extra: &[&str]| {
        let url = site.url("/app.js");
        let mut args = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        args.extend_from_slice(extra);
        args.push(&url);
        curl(&args)
    };
    assert_eq!(code(&["-H", &tag, "-H", "Accept-Encoding: gzip"]), "304");
    assert_eq!(code(&["-H", &tag]), "200");
}

#[test]
fn expires_puts_cache_headers_on_file_answers_as_nginx_does() {
    let site = Site::with("expires", |config| {
        config.expires = Some("1h".parse().unwrap());
    });
    site.file("f.txt", 10);
    let head = curl(&["-I", &site.url("/f.txt")]);
    assert_eq!(header(&head, "Cache-Control"), "max-age=3600");
    assert_ne!(header(&head, "Expires"), header(&head, "Date"));
    // A 304 carries them too (a cache refreshes its copy's lifetime from
    // it); an error does not.
    let tag = format!("If-None-Match: {}", header(&head, "ETag"));
    let not_modified = curl(&[
        "-s",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        &tag,
        &site.url("/f.txt"),
    ]);
    assert!(not_modified.starts_with("HTTP/1.1 304"), "{not_modified}");
    assert_eq!(header(&not_modified, "Cache-Control"), "max-age=3600");
    let missing = curl(&["-s", "-D", "-", "-o", "/dev/null", &site.url("/missing")]);
    assert!(!missing.contains("Cache-Control"), "{missing}");

    let forever = Site::with("expires-max", |config| {
        config.expires = Some(gyre_fileserver::Expires::Max)
    });
    forever.file("f.txt", 10);
    let head = curl(&["-I", &forever.url("/f.txt")]);
    assert_eq!(header(&head, "Expires"), "Thu, 31 Dec 2037 23:55:55 GMT");
    assert_eq!(header(&head, "Cache-Control"), "max-age=315360000");
}

#[test]
fn several_ranges_come_as_multipart_byteranges_in_the_order_asked() {
    let site = Site::new("multirange", Duration::from_secs(30));
    site.file("f.bin", 1000);
    let data = std::fs::read(site.root.join("f.bin")).unwrap();
    let dir = site.base.join("curl");
    std::fs::create_dir_all(&dir).unwrap();
    let (out, heads) = (dir.join("out"), dir.join("heads"));
    let url = site.url("/f.bin");
    curl(&[
        "-r",
        "900-909,0-4,-3",
        "-o",
        out.to_str().unwrap(),
        "-D",
        heads.to_str().unwrap(),
        &url,
    ]);
    let head = std::fs::read_to_string(&heads).unwrap();
    let body = std::fs::read(&out).unwrap();
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    let kind = header(&head, "Content-Type");
    let boundary = kind
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("{kind}"));
    assert_eq!(header(&head, "Content-Length"), body.len().to_string());
    // Each part: its own head, then exactly its bytes.
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = &body[..];
    loop {
        let at = memchr::memmem::find(rest, delimiter.as_bytes()).expect("a delimiter");
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            assert_eq!(&rest[2..], b"\r\n", "nothing after the closing delimiter");
            break;
        }
        let end = memchr::memmem::find(rest, b"\r\n\r\n").unwrap();
        let part_head = String::from_utf8(rest[..end].to_vec()).unwrap();
        let range = header(&part_head, "Content-Range").to_owned();
        assert_eq!(
            header(&part_head, "Content-Type"),
            "application/octet-stream"
        );
        let (span, total) = range
            .strip_prefix("bytes ")
            .unwrap()
            .split_once('/')
            .unwrap();
        assert_eq!(total, "1000");
        let (a, b) = span.split_once('-').unwrap();
        let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
        let bytes = &rest[end + 4..end + 4 + (b - a + 1)];
        assert_eq!(bytes, &data[a..=b], "{range}");
        parts.push((a, b));
        rest = &rest[end + 4 + (b - a + 1)..];
        assert!(rest.starts_with(b"\r\n"), "a line end closes each part");
    }
    assert_eq!(parts, [(900, 909), (0, 4), (997, 999)]);
    // HEAD says the same length; overlapping ranges get the whole file.
    let head = curl(&["-I", "-r", "900-909,0-4,-3", &url]);
    assert_eq!(header(&head, "Content-Length"), body.len().to_string());
    let whole = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download}",
        "-r",
        "0-9,5-20",
        &url,
    ]);
    assert_eq!(whole, "200 1000");
}

#[test]
fn fifty_parallel_downloads_complete() {
    let site = Site::new("parallel", Duration::from_secs(30));
    let crc = site.file("four", 4 << 20);
    let outs: Vec<PathBuf> = (0..50).map(|i| site.base.join(format!("out{i}"))).collect();
    let url = site.url("/four");
    let mut args = vec!["--parallel", "--parallel-max", "50", "--fail"];
    for out in &outs {
        args.extend_from_slice(&["-o", out.to_str().unwrap(), &url]);
    }
    curl(&args);
    for out in &outs {
        assert_eq!(crc_of(out), (4 << 20, crc), "{}", out.display());
    }
}

#[test]
fn malformed_and_oversized_requests_close_only_their_connection() {
    let site = Site::new("bad", Duration::from_secs(30));
    site.file("f.txt", 10);
    let addr = site.server.local_addr();
    let mut good = TcpStream::connect(addr).unwrap();

    for (request, status) in [
        (b"NONSENSE\r\n\r\n".to_vec(), "400"),
        (
            [
                &b"GET /f.txt HTTP/1.1\r\nX: "[..],
                &vec![b'a'; 10_000],
                b"\r\n\r\n",
            ]
            .concat(),
            "431",
        ),
        (
            b"GET /f.txt HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            "501",
        ),
    ] {
        let mut bad = TcpStream::connect(addr).unwrap();
        bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = bad.write_all(&request);
        let mut answer = String::new();
        let _ = bad.read_to_string(&mut answer); // ends: the server closed
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert!(answer.contains("Connection: close\r\n"), "{answer}");
    }

    // Pipelined requests on the good connection are answered in order.
    good.write_all(b"GET /f.txt HTTP/1.1\r\n\r\nHEAD /f.txt HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    good.read_to_string(&mut answer).unwrap();
    let statuses: Vec<&str> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answer[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "404"], "{answer}");
}

#[test]
fn slow_reader_stays_while_bytes_move_and_is_closed_when_they_stop() {
    let idle = Duration::from_secs(1);
    let site = Site::new("slow", idle);
    site.file("big", 64 << 20);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(32 * 1024).unwrap();
    socket.connect(&site.server.local_addr().into()).unwrap();
    let mut client: TcpStream = socket.into();
    client.write_all(b"GET /big HTTP/1.1\r\n\r\n").unwrap();

    // Three idle periods of slow but steady reading: never closed.
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    let started = Instant::now();
    while started.elapsed() < idle * 3 {
        let n = client.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed after {total} bytes while the download was moving"
        );
        total += n;
        std::thread::sleep(Duration::from_millis(100));
    }
    // Now stop reading: no progress for longer than the idle time (and the
    // close's drain time), so the server gives up on us.
    std::thread::sleep(idle * 4);
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rest = 0;
    let ended = loop {
        match client.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => rest += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(e) => panic!("the server did not close the stalled connection: {e}"),
        }
    };
    assert!(ended);
    assert!(
        total + rest < 64 << 20,
        "the whole file arrived; nothing was closed"
    );
}
