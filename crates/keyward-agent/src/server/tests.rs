use super::*;

/// Messages as the socket delivers them: bytes and who sent them.
struct Messages(std::collections::VecDeque<(&'static [u8], i32)>);

impl Source for Messages {
    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<(usize, Option<i32>)> {
        let Some((bytes, pid)) = self.0.pop_front() else {
            return Ok((0, None));
        };
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok((bytes.len(), Some(pid)))
    }
}

#[tokio::test]
async fn each_line_knows_every_process_that_sent_part_of_it() {
    let mut r = LineReader::new(Messages(
        [
            (&b"{\"a\":1}\n{\"b\""[..], 10),
            (&b":2}\n"[..], 20),
            (&b"{\"c\":3}\n"[..], 20),
        ]
        .into(),
    ));
    let (mut line, mut senders) = (Vec::new(), Vec::new());
    r.read_line(&mut line, 64, &mut senders)
        .await
        .expect("read");
    assert_eq!(
        (line.as_slice(), senders.as_slice()),
        (&b"{\"a\":1}\n"[..], &[10][..])
    );
    line.clear();
    r.read_line(&mut line, 64, &mut senders)
        .await
        .expect("read");
    assert_eq!(line, b"{\"b\":2}\n");
    assert_eq!(senders, [10, 20], "begun by one process, ended by another");
    line.clear();
    r.read_line(&mut line, 64, &mut senders)
        .await
        .expect("read");
    assert_eq!(senders, [20]);
}

#[tokio::test]
async fn lines_are_split_bounded_and_consumed_bytes_wiped() {
    let input: &[u8] = b"{\"a\":1}\nsecond-line-with-a-passphrase\ntoolongtoolong";
    let mut r = LineReader::new(input);
    let mut line = Vec::new();
    let mut senders = Vec::new();
    assert_eq!(
        r.read_line(&mut line, 64, &mut senders)
            .await
            .expect("read"),
        8
    );
    assert_eq!(line, b"{\"a\":1}\n");
    line.clear();
    r.read_line(&mut line, 64, &mut senders)
        .await
        .expect("read");
    assert_eq!(line, b"second-line-with-a-passphrase\n");
    // What is still pending holds none of the consumed lines.
    assert!(!String::from_utf8_lossy(&r.pending).contains("passphrase"));
    line.clear();
    // A line longer than allowed comes back cut at the bound, without its newline.
    assert_eq!(
        r.read_line(&mut line, 7, &mut senders).await.expect("read"),
        7
    );
    assert_eq!(line, b"toolong");
    line.clear();
    assert_eq!(
        r.read_line(&mut line, 64, &mut senders)
            .await
            .expect("read"),
        7
    );
    line.clear();
    assert_eq!(
        r.read_line(&mut line, 64, &mut senders)
            .await
            .expect("read"),
        0,
        "end of stream"
    );
}
