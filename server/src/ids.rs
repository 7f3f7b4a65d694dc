//! Peer ids and bearer tokens. Tokens are 128 random bits; only their SHA-256 is stored.

use sha2::{Digest, Sha256};

use crate::error::AppError;

fn random_hex<const N: usize>() -> Result<String, AppError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| AppError::Internal(format!("randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

/// A new peer id: `p` and 16 hex digits.
pub fn new_peer_id() -> Result<String, AppError> {
    Ok(format!("p{}", random_hex::<8>()?))
}

/// A new bearer token: 32 hex digits (128 bits).
pub fn new_token() -> Result<String, AppError> {
    random_hex::<16>()
}

/// What the database stores for a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// True when `token` has the shape of one we mint (so junk never reaches the database).
pub fn is_token_shaped(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// True when `id` has the shape of a peer id we mint.
pub fn is_peer_id_shaped(id: &str) -> bool {
    id.len() == 17 && id.starts_with('p') && id[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_bit_hex_and_unique() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert!(is_token_shaped(&a), "{a}");
        assert_ne!(a, b);
        assert_ne!(hash_token(&a), hash_token(&b));
        assert!(!is_token_shaped("not-a-token"));
    }

    #[test]
    fn peer_ids_have_their_documented_shape() {
        let id = new_peer_id().unwrap();
        assert!(is_peer_id_shaped(&id), "{id}");
        assert!(!is_peer_id_shaped("p123"));
        assert!(!is_peer_id_shaped("x0123456789abcdef"));
    }
}
