//! Just enough STUN (RFC 8489) to route a binding request to its session: the local ufrag in
//! the USERNAME attribute (`<our ufrag>:<their ufrag>`).

/// The ufrag a STUN message addresses (the part of USERNAME before `:`), if `datagram` is a
/// well-formed STUN message carrying one.
pub(crate) fn local_ufrag(datagram: &[u8]) -> Option<&str> {
    const HEADER: usize = 20;
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    if datagram.len() < HEADER || datagram[0] & 0xc0 != 0 || datagram[4..8] != MAGIC {
        return None;
    }
    let length = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let body = datagram.get(HEADER..HEADER + length)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        // A PRIORITY attribute first, so the parser has to walk past one.
        attrs.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        attrs.extend_from_slice(&0x0006u16.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn the_local_ufrag_is_read_from_username() {
        assert_eq!(local_ufrag(&binding_request("abcd:wxyz1")), Some("abcd"));
    }

    #[test]
    fn malformed_or_foreign_datagrams_give_nothing() {
        let mut truncated = binding_request("abcd:wxyz");
        truncated.truncate(30);
        assert_eq!(local_ufrag(&truncated), None);
        let mut no_magic = binding_request("abcd:wxyz");
        no_magic[4] = 0;
        assert_eq!(local_ufrag(&no_magic), None);
        assert_eq!(local_ufrag(&[0x80; 40]), None);
        assert_eq!(local_ufrag(&[]), None);
    }
}
