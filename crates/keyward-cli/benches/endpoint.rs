//! Load on `keyward exec`'s container-credentials endpoint, as SDK clients would make it: run as
//! the child of `keyward exec aws:PROFILE -- <this> --bench` (bench/driver.py does), it opens 16
//! kept-alive connections to the endpoint the environment names, sends GET after GET for a few
//! seconds and prints requests per second and the latency percentiles.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
const RUN: Duration = Duration::from_secs(5);

fn one(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> Result<(), String> {
    stream.write_all(request).map_err(|e| e.to_string())?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the endpoint closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = resp.parse(buf) {
            if resp.code != Some(200) {
                return Err(format!("status {:?}", resp.code));
            }
            let len = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                .ok_or("no Content-Length")?;
            if buf.len() >= head + len {
                return Ok(());
            }
        }
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (Ok(url), Ok(token)) = (
        std::env::var("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        std::env::var("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    ) else {
        eprintln!("run me under keyward exec aws:PROFILE -- (no endpoint in the environment)");
        std::process::exit(2);
    };
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n\r\n")
        .into_bytes();
    let start = Instant::now() + Duration::from_millis(200);
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (host, request) = (host.to_owned(), request.clone());
            std::thread::spawn(move || -> Result<Vec<u32>, String> {
                let mut s = TcpStream::connect(&host).map_err(|e| e.to_string())?;
                s.set_nodelay(true).map_err(|e| e.to_string())?;
                let mut buf = Vec::with_capacity(4096);
                let mut lat = Vec::with_capacity(100_000);
                while Instant::now() < start {
                    std::thread::sleep(Duration::from_millis(1));
                }
                while start.elapsed() < RUN {
                    let t = Instant::now();
                    one(&mut s, &request, &mut buf)?;
                    lat.push(t.elapsed().as_micros() as u32);
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        match w.join() {
            Ok(Ok(l)) => all.extend(l),
            Ok(Err(e)) => {
                eprintln!("a client failed: {e}");
                std::process::exit(1);
            }
            Err(_) => std::process::exit(1),
        }
    }
    all.sort_unstable();
    let pct =
        |p: f64| f64::from(all[((all.len() as f64 * p) as usize).min(all.len() - 1)]) / 1000.0;
    println!(
        "container endpoint, {CLIENTS} kept-alive clients for {} s: {:.0} requests/s, latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} requests (target: >= 10,000 requests/s, p99 <= 2 ms)",
        RUN.as_secs(),
        all.len() as f64 / RUN.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(1.0),
        all.len()
    );
}
