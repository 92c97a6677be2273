//! Agent throughput: 64 concurrent clients on the real socket asking for cached AWS credentials.
//! Run through `bench/run`, which starts a keyring, moto, an unlocked vault and a warm cache and
//! passes the socket and profile in KEYWARD_BENCH_SOCKET / KEYWARD_BENCH_PROFILE.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const CLIENTS: usize = 64;
const REQUESTS_PER_CLIENT: usize = 500;

fn main() {
    let (Ok(socket), Ok(profile)) = (
        std::env::var("KEYWARD_BENCH_SOCKET"),
        std::env::var("KEYWARD_BENCH_PROFILE"),
    ) else {
        eprintln!("throughput: run it through bench/run (it needs a live agent: KEYWARD_BENCH_SOCKET, KEYWARD_BENCH_PROFILE)");
        std::process::exit(2);
    };
    let request =
        format!("{{\"v\":1,\"req\":{{\"op\":\"cred_aws\",\"profile\":\"{profile}\"}}}}\n");
    let start = Instant::now();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let socket = socket.clone();
            let request = request.clone();
            std::thread::spawn(move || {
                let stream = UnixStream::connect(&socket).expect("connect");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                let mut lat = Vec::with_capacity(REQUESTS_PER_CLIENT);
                let mut line = String::new();
                for _ in 0..REQUESTS_PER_CLIENT {
                    let t = Instant::now();
                    writer.write_all(request.as_bytes()).expect("write");
                    line.clear();
                    reader.read_line(&mut line).expect("read");
                    assert!(
                        line.contains("\"aws_credentials\""),
                        "unexpected reply: {line}"
                    );
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("client"))
        .collect();
    let wall = start.elapsed();
    all.sort();
    let n = all.len();
    let pct = |p: f64| all[((n as f64 * p) as usize).min(n - 1)];
    println!(
        "throughput: {CLIENTS} clients, {n} requests in {:.2} s = {:.0} req/s; latency p50 {:.2} ms, p99 {:.2} ms",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
}
