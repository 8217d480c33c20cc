//! The chapter's DNS example (C14): its name table, and an independent std client to check a
//! notebook's server with.
//!
//! The notebook writes the server (`lookup_dns`, `create_response`) and its own hand-encoded
//! client, as the book does. [`resolve`] here shares no code with them, so a bug in the
//! notebook's encoder cannot hide a bug in its server. Wire format: RFC 1035 §4.1.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

/// The book's `ip_map` (2nd ed.) plus the 3rd edition's `dataquest.io.`.
pub const IP_MAP: [(&str, Ipv4Addr); 4] = [
    ("facebook.com.", Ipv4Addr::new(173, 252, 120, 6)),
    ("yougov.com.", Ipv4Addr::new(213, 52, 133, 246)),
    ("wipo.int.", Ipv4Addr::new(193, 5, 93, 80)),
    ("dataquest.io.", Ipv4Addr::new(104, 20, 20, 199)),
];

/// What the book's server answers for names it does not know.
pub const UNKNOWN_NAME_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The address the book's table gives `name` (with or without the final dot), else
/// [`UNKNOWN_NAME_IP`].
pub fn expected_ip(name: &str) -> Ipv4Addr {
    let dotted = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    IP_MAP
        .iter()
        .find(|(n, _)| *n == dotted)
        .map_or(UNKNOWN_NAME_IP, |&(_, ip)| ip)
}

/// A standard query for the A record of `name`: header with recursion desired, one question.
pub fn encode_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // flags: RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1, AN/NS/AR 0
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&[0, 1, 0, 1]); // QTYPE A, QCLASS IN
    q
}

/// The query id and the first A record's address in a reply, checking that it is a response
/// with exactly one answer.
pub fn parse_reply(reply: &[u8]) -> io::Result<(u16, Ipv4Addr)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("DNS: {what}"));
    if reply.len() < 12 {
        return Err(bad("reply shorter than a header"));
    }
    let id = u16::from_be_bytes([reply[0], reply[1]]);
    if reply[2] & 0x80 == 0 {
        return Err(bad("QR bit not set: not a response"));
    }
    let count = |i: usize| u16::from_be_bytes([reply[i], reply[i + 1]]);
    if count(4) != 1 || count(6) != 1 {
        return Err(bad("expected one question and one answer"));
    }
    // Skip the question: labels up to the root, then QTYPE and QCLASS.
    let mut i = 12;
    while *reply.get(i).ok_or_else(|| bad("truncated question"))? != 0 {
        i += 1 + reply[i] as usize;
    }
    i += 5;
    // Answer: NAME (a pointer, 2 bytes), TYPE, CLASS, TTL, RDLENGTH, RDATA.
    let answer = reply
        .get(i..i + 16)
        .ok_or_else(|| bad("truncated answer"))?;
    if answer[0] & 0xC0 != 0xC0 || answer[2..4] != [0, 1] || answer[10..12] != [0, 4] {
        return Err(bad("answer is not an A record with a name pointer"));
    }
    Ok((
        id,
        Ipv4Addr::new(answer[12], answer[13], answer[14], answer[15]),
    ))
}

/// Asks the DNS server at `server` for `name` over UDP, waiting up to 2 s.
pub fn resolve(server: SocketAddr, name: &str) -> io::Result<Ipv4Addr> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(2)))?;
    let id = (std::process::id() as u16) ^ (name.len() as u16).rotate_left(8);
    socket.send_to(&encode_query(id, name), server)?;
    let mut buf = [0u8; 512];
    let (n, _) = socket.recv_from(&mut buf)?;
    let (got, ip) = parse_reply(&buf[..n])?;
    if got != id {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("DNS: reply id {got} for query id {id}"),
        ));
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encodes_labels() {
        let q = encode_query(0xBEEF, "wipo.int");
        assert_eq!(&q[..4], &[0xBE, 0xEF, 0x01, 0x00]);
        assert_eq!(&q[12..], b"\x04wipo\x03int\x00\x00\x01\x00\x01");
        assert_eq!(encode_query(1, "wipo.int."), encode_query(1, "wipo.int"));
    }

    #[test]
    fn parses_a_hand_built_reply() {
        let mut reply = encode_query(7, "yougov.com");
        reply[2..4].copy_from_slice(&[0x81, 0x80]);
        reply[7] = 1;
        reply.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 213, 52, 133, 246]);
        assert_eq!(
            parse_reply(&reply).unwrap(),
            (7, Ipv4Addr::new(213, 52, 133, 246))
        );
        assert!(parse_reply(&reply[..reply.len() - 1]).is_err());
        reply[2] = 0x01;
        assert!(parse_reply(&reply).is_err());
    }

    #[test]
    fn expected_ips_follow_the_book() {
        assert_eq!(expected_ip("facebook.com"), Ipv4Addr::new(173, 252, 120, 6));
        assert_eq!(
            expected_ip("dataquest.io."),
            Ipv4Addr::new(104, 20, 20, 199)
        );
        assert_eq!(expected_ip("example.org"), Ipv4Addr::LOCALHOST);
    }
}
