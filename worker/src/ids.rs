//! Peer ids and bearer tokens. A Worker token names its room, so any isolate can route it to
//! the room's Durable Object: `<room>.<32 hex digits>` (128 random bits). Only its SHA-256 is
//! stored. Clients treat tokens as opaque.

use callroom_protocol::is_valid_room_id;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

fn random_hex<const N: usize>() -> Result<String, ApiError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|_| ApiError::internal())?;
    Ok(hex::encode(bytes))
}

/// A new peer id: `p` and 16 hex digits, as callroom-server mints them.
pub fn new_peer_id() -> Result<String, ApiError> {
    Ok(format!("p{}", random_hex::<8>()?))
}

/// A new secret: 32 hex digits.
pub fn new_secret() -> Result<String, ApiError> {
    random_hex::<16>()
}

/// A new bearer token for a peer of `room`.
pub fn new_token(room: &str) -> Result<String, ApiError> {
    Ok(format!("{room}.{}", new_secret()?))
}

/// The room a well-formed token belongs to.
pub fn room_of_token(token: &str) -> Option<&str> {
    let (room, secret) = token.rsplit_once('.')?;
    let secret_ok = secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    (secret_ok && is_valid_room_id(room)).then_some(room)
}

/// The bearer token of an `Authorization` header value, if well formed.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let token = header?.strip_prefix("Bearer ")?.trim();
    room_of_token(token).map(|_| token)
}

/// What storage keeps for a token or key: its SHA-256, in hex.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// True when `id` has the shape of a peer id we mint.
pub fn is_peer_id_shaped(id: &str) -> bool {
    id.len() == 17 && id.starts_with('p') && id[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_room_and_nothing_else_passes_for_one() {
        let token = new_token("standup_2-B").unwrap();
        assert_eq!(room_of_token(&token), Some("standup_2-B"));
        assert_eq!(
            bearer(Some(&format!("Bearer {token}"))),
            Some(token.as_str())
        );
        assert_ne!(new_token("r").unwrap(), new_token("r").unwrap());
        for bad in [
            "0123456789abcdef0123456789abcdef",
            "../x.0123456789abcdef0123456789abcdef",
            "r.0123456789abcdef0123456789abcdeg",
            "r.0123",
            "",
        ] {
            assert_eq!(room_of_token(bad), None, "{bad}");
        }
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn peer_ids_have_the_servers_shape_and_hashes_are_hex_sha256() {
        assert!(is_peer_id_shaped(&new_peer_id().unwrap()));
        assert!(!is_peer_id_shaped("p123"));
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
