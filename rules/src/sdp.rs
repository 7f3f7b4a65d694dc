//! What the proxy reads from a client's SDP: each media section's `mid`, kind and simulcast
//! `rid`s, so its room hears what a published track is.

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `a=mid:`.
    pub mid: String,
    /// `audio` or `video` (the `m=` line's media).
    pub kind: String,
    /// `a=rid:<id> send` lines.
    pub rids: Vec<String>,
}

/// Most sections and rids read: a hostile SDP cannot make the proxy keep more.
const MAX_SECTIONS: usize = 128;
const MAX_RIDS: usize = 8;

/// The media sections of `sdp`, in order.
pub fn sections(sdp: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    for line in sdp.lines().map(str::trim_end) {
        if let Some(media) = line.strip_prefix("m=") {
            if sections.len() == MAX_SECTIONS {
                break;
            }
            let kind = media.split(' ').next().unwrap_or_default();
            sections.push(Section {
                mid: String::new(),
                kind: kind.chars().take(16).collect(),
                rids: Vec::new(),
            });
        } else if let Some(section) = sections.last_mut() {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                section.mid = mid.chars().take(32).collect();
            } else if let Some(rid) = line.strip_prefix("a=rid:") {
                let mut words = rid.split(' ');
                let id = words.next().unwrap_or_default();
                if words.next() == Some("send") && section.rids.len() < MAX_RIDS && !id.is_empty() {
                    section.rids.push(id.chars().take(16).collect());
                }
            }
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_give_mid_kind_and_sent_rids() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rid:f send\r\na=rid:h send\r\n\
                   a=rid:q recv\r\na=simulcast:send f;h\r\n";
        assert_eq!(
            sections(sdp),
            vec![
                Section {
                    mid: "0".into(),
                    kind: "audio".into(),
                    rids: vec![]
                },
                Section {
                    mid: "1".into(),
                    kind: "video".into(),
                    rids: vec!["f".into(), "h".into()]
                },
            ]
        );
    }

    #[test]
    fn junk_gives_nothing_and_floods_are_capped() {
        assert!(sections("not sdp at all\n\0\u{ffff}").is_empty());
        let flood = "m=video 9 X 96\r\n".repeat(10_000);
        assert_eq!(sections(&flood).len(), MAX_SECTIONS);
    }
}
