//! Agent throughput: 64 concurrent clients on the real socket asking for cached AWS credentials.
//! Run through `bench/run`, which starts a keyring, moto, an unlocked vault and a warm cache and
//! passes the socket and profile in KEYWARD_BENCH_SOCKET / KEYWARD_BENCH_PROFILE.
//!
//! Each client is a process of its own (this binary again, with KEYWARD_BENCH_WORKER set), as
//! 64 tools would be: the agent serves at most a few connections per process.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
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
    if std::env::var_os("KEYWARD_BENCH_WORKER").is_some() {
        worker(&socket, &profile);
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    let mut workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            Command::new(&exe)
                .env("KEYWARD_BENCH_WORKER", "1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a client process")
        })
        .collect();
    // Every client connected before the clock starts: process start-up is not the agent's time.
    let mut outputs: Vec<_> = workers
        .iter_mut()
        .map(|w| {
            let mut out = BufReader::new(w.stdout.take().expect("stdout"));
            let mut ready = String::new();
            out.read_line(&mut ready).expect("ready line");
            assert_eq!(ready.trim(), "ready", "a client failed to connect");
            out
        })
        .collect();
    let start = Instant::now();
    for w in &mut workers {
        w.stdin
            .take()
            .expect("stdin")
            .write_all(b"go\n")
            .expect("start a client");
    }
    let mut all: Vec<Duration> = Vec::with_capacity(CLIENTS * REQUESTS_PER_CLIENT);
    for out in &mut outputs {
        let mut text = String::new();
        out.read_to_string(&mut text).expect("latencies");
        all.extend(
            text.lines()
                .map(|l| Duration::from_nanos(l.parse().expect("nanoseconds"))),
        );
    }
    let wall = start.elapsed();
    for mut w in workers {
        assert!(w.wait().expect("wait").success(), "a client failed");
    }
    assert_eq!(
        all.len(),
        CLIENTS * REQUESTS_PER_CLIENT,
        "every request answered"
    );
    all.sort();
    let n = all.len();
    let pct = |p: f64| all[((n as f64 * p) as usize).min(n - 1)];
    println!(
        "throughput: {CLIENTS} client processes, {n} requests in {:.2} s = {:.0} req/s; latency p50 {:.2} ms, p99 {:.2} ms",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
}

/// One client: connects, says "ready", waits for "go", then asks REQUESTS_PER_CLIENT times and
/// prints each latency in nanoseconds.
fn worker(socket: &str, profile: &str) {
    let request =
        format!("{{\"v\":1,\"req\":{{\"op\":\"cred_aws\",\"profile\":\"{profile}\"}}}}\n");
    let stream = UnixStream::connect(socket).expect("connect");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready").expect("stdout");
    stdout.flush().expect("stdout");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).expect("go");
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
    let text: String = lat.iter().map(|d| format!("{}\n", d.as_nanos())).collect();
    stdout.write_all(text.as_bytes()).expect("stdout");
}
