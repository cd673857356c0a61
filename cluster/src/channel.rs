//! The connection between a validator and the sequencer as a pure state
//! machine: the handshake that derives a per-connection key from the
//! node's key and both sides' nonces (HMAC-SHA256), then frames encrypted
//! and authenticated with AES-256-GCM and numbered in each direction. No I/O here; `crate::io`
//! moves the bytes.
//!
//! ```text
//! validator                                   sequencer
//!   Hello { node, n_v }              ──────►   looks up K_node
//!                                    ◄──────   Welcome { epoch, n_s,
//!                                                HMAC(K_node, welcome ‖ node ‖ n_v ‖ n_s ‖ epoch) }
//!   K_conn = HMAC(K_node, session ‖ node ‖ n_v ‖ n_s)   (both sides)
//!   K_enc = HMAC(K_conn, aead)
//!   frame = version ‖ seq ‖ AES-256-GCM(K_enc, nonce = direction ‖ 0³ ‖ seq,
//!                                       aad = direction ‖ version ‖ seq, body)
//! ```
//!
//! The bodies are encrypted as well as authenticated (AES-256-GCM, a nonce
//! unique per connection key, direction and frame number): a payment a
//! validator forwards carries the payer's coins with their tags, which are
//! cash to whoever reads them, and the key share `K_PY`.
//!
//! What this refuses, and why it is enough:
//! - a frame from anyone without `K_node`: the MAC fails;
//! - a frame replayed on the same connection or reordered: its sequence
//!   number is not the next one expected;
//! - a frame replayed from another connection: `K_conn` covers both fresh
//!   nonces, so it differs per connection;
//! - a frame reflected back to its sender: the direction is under the MAC;
//! - a sequencer that does not know `K_node` (an impostor): its Welcome
//!   proof fails at the validator;
//! - a sequencer of a lower fencing epoch than one already seen.
//!
//! Any error breaks the channel for good: the connection is dropped and a
//! fresh handshake starts over, so no state survives a tampered frame.

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, Nonce, Payload};
use hmac::{Hmac, KeyInit, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::constants::{
    CLUSTER_WIRE_VERSION, FRAME_BYTES_MAX, MAC_BYTES, NODE_KEY_BYTES_MIN, NODE_NAME_BYTES_MAX,
    NODES_MAX, NONCE_BYTES,
};
use crate::wire::FencingEpoch;

type HmacSha256 = Hmac<Sha256>;

const LABEL_WELCOME: &[u8] = b"varietycash/cluster/welcome/v1";
const LABEL_SESSION: &[u8] = b"varietycash/cluster/session/v1";
const LABEL_AEAD: &[u8] = b"varietycash/cluster/aead/v1";
/// Bytes of the AES-GCM tag at the end of every frame.
const FRAME_TAG_BYTES: usize = 16;
/// Bytes before the body: the version and the sequence number.
const FRAME_HEADER_BYTES: usize = 1 + 8;

/// A node's name in the cluster (a validator's), as the sequencer's key
/// file lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeName(String);

impl NodeName {
    /// A name of 1 to `NODE_NAME_BYTES_MAX` ASCII letters, digits, `-`,
    /// `_` or `.`.
    pub fn parse(name: &str) -> Result<NodeName, KeyFileError> {
        let ok = !name.is_empty()
            && name.len() <= NODE_NAME_BYTES_MAX
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(NodeName(name.to_owned()))
        } else {
            Err(KeyFileError::BadName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A node's secret MAC key, shared by the node and the sequencer.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeKey(Vec<u8>);

impl NodeKey {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<NodeKey, KeyFileError> {
        if bytes.len() < NODE_KEY_BYTES_MIN {
            return Err(KeyFileError::ShortKey);
        }
        Ok(NodeKey(bytes))
    }

    /// A fresh key from the OS's CSPRNG.
    pub fn random() -> Result<NodeKey, getrandom::Error> {
        let mut key = vec![0u8; NODE_KEY_BYTES_MIN];
        getrandom::fill(&mut key)?;
        Ok(NodeKey(key))
    }

    /// Lowercase hex, as key files hold it.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    pub fn from_hex(text: &str) -> Result<NodeKey, KeyFileError> {
        let bytes = hex::decode(text.trim()).map_err(|_| KeyFileError::BadHex)?;
        NodeKey::from_bytes(bytes)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length.
        #[allow(clippy::expect_used)]
        HmacSha256::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeKey(..)")
    }
}

/// Why a node key file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    #[error("a node name must be 1 to {NODE_NAME_BYTES_MAX} letters, digits, '-', '_' or '.'")]
    BadName,
    #[error("a node key must be hex")]
    BadHex,
    #[error("a node key must be at least {NODE_KEY_BYTES_MIN} bytes")]
    ShortKey,
    #[error("line {0}: expected `NAME HEXKEY`")]
    BadLine(usize),
    #[error("node {0} is listed twice")]
    Duplicate(String),
    #[error("more than {NODES_MAX} nodes")]
    TooMany,
}

/// The sequencer's keys: one per validator node.
#[derive(Debug, Clone, Default)]
pub struct NodeKeys(BTreeMap<NodeName, NodeKey>);

impl NodeKeys {
    /// Parses `NAME HEXKEY` lines; blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<NodeKeys, KeyFileError> {
        let mut keys = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(name), Some(key), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(KeyFileError::BadLine(i + 1));
            };
            let name = NodeName::parse(name)?;
            let key = NodeKey::from_hex(key)?;
            if keys.len() >= NODES_MAX {
                return Err(KeyFileError::TooMany);
            }
            if keys.insert(name.clone(), key).is_some() {
                return Err(KeyFileError::Duplicate(name.0));
            }
        }
        Ok(NodeKeys(keys))
    }

    pub fn insert(&mut self, name: NodeName, key: NodeKey) {
        self.0.insert(name, key);
    }

    pub fn get(&self, name: &NodeName) -> Option<&NodeKey> {
        self.0.get(name)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The first message of a connection, validator to sequencer (not MACed:
/// it carries no request, only who claims to call and a fresh nonce).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Hello {
    node: NodeName,
    nonce: [u8; NONCE_BYTES],
}

/// The sequencer's answer: its epoch, its nonce, and the proof that it
/// knows the node's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Welcome {
    epoch: FencingEpoch,
    nonce: [u8; NONCE_BYTES],
    proof: [u8; MAC_BYTES],
}

/// Why a handshake failed. The connection is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    #[error("handshake message is malformed")]
    Malformed,
    #[error("unknown cluster protocol version {0}")]
    UnknownVersion(u8),
    #[error("node {0} has no key here")]
    UnknownNode(String),
    #[error("the sequencer's proof of the node key does not verify")]
    BadProof,
    #[error("the sequencer's fencing epoch {got} is below {seen}, already seen")]
    StaleEpoch { got: u64, seen: u64 },
}

/// Why a frame was refused. The channel is broken from then on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("frame of {0} bytes is too short or too long")]
    BadLength(usize),
    #[error("unknown cluster protocol version {0}")]
    UnknownVersion(u8),
    #[error("frame MAC does not verify")]
    BadMac,
    #[error("frame {got} replayed (expected {expected})")]
    Replayed { got: u64, expected: u64 },
    #[error("frame {got} out of order (expected {expected})")]
    OutOfOrder { got: u64, expected: u64 },
    #[error("frame body does not decode")]
    Malformed,
    #[error("the channel is broken by an earlier bad frame")]
    Broken,
}

/// Which end of the connection a channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Validator,
    Sequencer,
}

impl Side {
    fn sending_byte(self) -> u8 {
        match self {
            Side::Validator => 0,
            Side::Sequencer => 1,
        }
    }

    fn receiving_byte(self) -> u8 {
        1 - self.sending_byte()
    }
}

/// One authenticated connection's state: the frame cipher, the side, and
/// the next sequence number each way.
#[derive(Clone)]
pub struct Channel {
    /// AES-256-GCM keyed with `K_enc`, derived from the connection key.
    cipher: Aes256Gcm,
    side: Side,
    next_send: u64,
    next_receive: u64,
    broken: bool,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("side", &self.side)
            .field("next_send", &self.next_send)
            .field("next_receive", &self.next_receive)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// The frame's nonce: unique per connection key (both sides' fresh
/// nonces are under it), direction and sequence number.
fn frame_nonce(direction: u8, seq: u64) -> Nonce<Aes256Gcm> {
    let mut nonce = [0u8; 12];
    nonce[0] = direction;
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    Nonce::<Aes256Gcm>::from(nonce)
}

/// What the tag covers besides the body: the direction (a frame reflected
/// to its sender fails) and the frame's clear header.
fn frame_aad(direction: u8, header: &[u8]) -> [u8; 1 + FRAME_HEADER_BYTES] {
    let mut aad = [0u8; 1 + FRAME_HEADER_BYTES];
    aad[0] = direction;
    aad[1..].copy_from_slice(header);
    aad
}

impl Channel {
    fn new(key: NodeKey, side: Side) -> Channel {
        let mut derive = key.mac();
        derive.update(LABEL_AEAD);
        let k_enc = derive.finalize().into_bytes();
        // K_enc is an HMAC-SHA256 output: 32 bytes, AES-256's key length.
        #[allow(clippy::expect_used)]
        let cipher = <Aes256Gcm as aes_gcm::KeyInit>::new_from_slice(&k_enc)
            .expect("a 32-byte key for AES-256");
        Channel {
            cipher,
            side,
            next_send: 1,
            next_receive: 1,
            broken: false,
        }
    }

    /// Seals `message` as the next frame (without the length prefix).
    pub fn seal<M: Serialize>(&mut self, message: &M) -> Vec<u8> {
        assert!(!self.broken, "sealing on a broken channel");
        let direction = self.side.sending_byte();
        let seq = self.next_send;
        let mut frame = Vec::with_capacity(64);
        frame.push(CLUSTER_WIRE_VERSION);
        frame.extend_from_slice(&seq.to_be_bytes());
        // Serializing our own message types into a Vec cannot fail.
        #[allow(clippy::expect_used)]
        let body = postcard::to_allocvec(message).expect("postcard into a Vec");
        let aad = frame_aad(direction, &frame);
        // AES-GCM refuses only a body beyond 2^36 bytes; ours are bounded
        // far below by FRAME_BYTES_MAX.
        #[allow(clippy::expect_used)]
        let sealed = self
            .cipher
            .encrypt(
                &frame_nonce(direction, seq),
                Payload {
                    msg: &body,
                    aad: &aad,
                },
            )
            .expect("AES-GCM seals any body of a frame's size");
        frame.extend_from_slice(&sealed);
        self.next_send += 1;
        frame
    }

    /// Opens the next frame from the other side: the tag first (nothing of
    /// an unauthenticated frame is believed), then its number, then its
    /// body.
    pub fn open<M: DeserializeOwned>(&mut self, frame: &[u8]) -> Result<M, FrameError> {
        if self.broken {
            return Err(FrameError::Broken);
        }
        let opened = self.open_unbroken(frame);
        if opened.is_err() {
            self.broken = true;
        }
        opened
    }

    fn open_unbroken<M: DeserializeOwned>(&mut self, frame: &[u8]) -> Result<M, FrameError> {
        if frame.len() < FRAME_HEADER_BYTES + FRAME_TAG_BYTES || frame.len() > FRAME_BYTES_MAX {
            return Err(FrameError::BadLength(frame.len()));
        }
        let (header, sealed) = frame.split_at(FRAME_HEADER_BYTES);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&header[1..]);
        let seq = u64::from_be_bytes(seq);
        let direction = self.side.receiving_byte();
        let aad = frame_aad(direction, header);
        let body = self
            .cipher
            .decrypt(
                &frame_nonce(direction, seq),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| FrameError::BadMac)?;
        let version = header[0];
        if version != CLUSTER_WIRE_VERSION {
            return Err(FrameError::UnknownVersion(version));
        }
        let expected = self.next_receive;
        if seq < expected {
            return Err(FrameError::Replayed { got: seq, expected });
        }
        if seq > expected {
            return Err(FrameError::OutOfOrder { got: seq, expected });
        }
        let (message, rest): (M, &[u8]) =
            postcard::take_from_bytes(&body).map_err(|_| FrameError::Malformed)?;
        if !rest.is_empty() {
            return Err(FrameError::Malformed);
        }
        self.next_receive += 1;
        Ok(message)
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Splits the channel into its sending and receiving halves, for a
    /// connection read on one thread and written on others.
    pub fn split(self) -> (FrameSealer, FrameOpener) {
        (FrameSealer(self.clone()), FrameOpener(self))
    }
}

/// The sending half of a [`Channel`].
#[derive(Debug)]
pub struct FrameSealer(Channel);

impl FrameSealer {
    pub fn seal<M: Serialize>(&mut self, message: &M) -> Vec<u8> {
        self.0.seal(message)
    }
}

/// The receiving half of a [`Channel`].
#[derive(Debug)]
pub struct FrameOpener(Channel);

impl FrameOpener {
    pub fn open<M: DeserializeOwned>(&mut self, frame: &[u8]) -> Result<M, FrameError> {
        self.0.open(frame)
    }
}

fn encode_handshake<M: Serialize>(message: &M) -> Vec<u8> {
    let out = vec![CLUSTER_WIRE_VERSION];
    // Serializing our own types into a Vec cannot fail.
    #[allow(clippy::expect_used)]
    let out = postcard::to_extend(message, out).expect("postcard into a Vec");
    out
}

fn decode_handshake<M: DeserializeOwned>(bytes: &[u8]) -> Result<M, HandshakeError> {
    let (&version, body) = bytes.split_first().ok_or(HandshakeError::Malformed)?;
    if version != CLUSTER_WIRE_VERSION {
        return Err(HandshakeError::UnknownVersion(version));
    }
    let (message, rest): (M, &[u8]) =
        postcard::take_from_bytes(body).map_err(|_| HandshakeError::Malformed)?;
    if !rest.is_empty() {
        return Err(HandshakeError::Malformed);
    }
    Ok(message)
}

fn welcome_proof(
    key: &NodeKey,
    node: &NodeName,
    validator_nonce: &[u8; NONCE_BYTES],
    sequencer_nonce: &[u8; NONCE_BYTES],
    epoch: FencingEpoch,
) -> HmacSha256 {
    let mut mac = key.mac();
    mac.update(LABEL_WELCOME);
    mac.update(&[CLUSTER_WIRE_VERSION]);
    mac.update(&(node.0.len() as u64).to_be_bytes());
    mac.update(node.0.as_bytes());
    mac.update(validator_nonce);
    mac.update(sequencer_nonce);
    mac.update(&epoch.0.to_be_bytes());
    mac
}

fn connection_key(
    key: &NodeKey,
    node: &NodeName,
    validator_nonce: &[u8; NONCE_BYTES],
    sequencer_nonce: &[u8; NONCE_BYTES],
) -> NodeKey {
    let mut mac = key.mac();
    mac.update(LABEL_SESSION);
    mac.update(&(node.0.len() as u64).to_be_bytes());
    mac.update(node.0.as_bytes());
    mac.update(validator_nonce);
    mac.update(sequencer_nonce);
    NodeKey(mac.finalize().into_bytes().to_vec())
}

/// A validator's handshake in progress.
#[derive(Debug)]
pub struct ValidatorHandshake {
    node: NodeName,
    key: NodeKey,
    nonce: [u8; NONCE_BYTES],
}

impl ValidatorHandshake {
    /// Starts a handshake as `node` with a fresh `nonce`; returns the Hello
    /// to send.
    pub fn start(
        node: NodeName,
        key: NodeKey,
        nonce: [u8; NONCE_BYTES],
    ) -> (ValidatorHandshake, Vec<u8>) {
        let hello = encode_handshake(&Hello {
            node: node.clone(),
            nonce,
        });
        (ValidatorHandshake { node, key, nonce }, hello)
    }

    /// Checks the sequencer's Welcome; refuses an epoch below `seen`.
    pub fn finish(
        self,
        welcome: &[u8],
        seen: FencingEpoch,
    ) -> Result<(Channel, FencingEpoch), HandshakeError> {
        let welcome: Welcome = decode_handshake(welcome)?;
        welcome_proof(
            &self.key,
            &self.node,
            &self.nonce,
            &welcome.nonce,
            welcome.epoch,
        )
        .verify_slice(&welcome.proof)
        .map_err(|_| HandshakeError::BadProof)?;
        if welcome.epoch < seen {
            return Err(HandshakeError::StaleEpoch {
                got: welcome.epoch.0,
                seen: seen.0,
            });
        }
        let key = connection_key(&self.key, &self.node, &self.nonce, &welcome.nonce);
        Ok((Channel::new(key, Side::Validator), welcome.epoch))
    }
}

/// The sequencer's side of a handshake: reads the Hello, answers with a
/// Welcome for `epoch`; returns the channel, the node, and the Welcome.
pub fn sequencer_handshake(
    hello: &[u8],
    keys: &NodeKeys,
    nonce: [u8; NONCE_BYTES],
    epoch: FencingEpoch,
) -> Result<(Channel, NodeName, Vec<u8>), HandshakeError> {
    let hello: Hello = decode_handshake(hello)?;
    let node = NodeName::parse(hello.node.as_str()).map_err(|_| HandshakeError::Malformed)?;
    let key = keys
        .get(&node)
        .ok_or_else(|| HandshakeError::UnknownNode(node.0.clone()))?;
    let proof = welcome_proof(key, &node, &hello.nonce, &nonce, epoch)
        .finalize()
        .into_bytes()
        .into();
    let welcome = encode_handshake(&Welcome {
        epoch,
        nonce,
        proof,
    });
    let channel = Channel::new(
        connection_key(key, &node, &hello.nonce, &nonce),
        Side::Sequencer,
    );
    Ok((channel, node, welcome))
}

/// A fresh handshake nonce from the OS's CSPRNG.
pub fn fresh_nonce() -> Result<[u8; NONCE_BYTES], getrandom::Error> {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce)?;
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::wire::{FromSequencer, RequestId, ToSequencer};
    use ledger::{Seq, TxId};

    fn node() -> NodeName {
        NodeName::parse("validator-1").unwrap()
    }

    fn keys_with(key: &NodeKey) -> NodeKeys {
        let mut keys = NodeKeys::default();
        keys.insert(node(), key.clone());
        keys
    }

    /// A connected pair: (validator, sequencer).
    fn pair(nonce_v: u8, nonce_s: u8) -> (Channel, Channel) {
        let key = NodeKey::from_bytes(vec![7; 32]).unwrap();
        let (hs, hello) = ValidatorHandshake::start(node(), key.clone(), [nonce_v; 32]);
        let (s, name, welcome) =
            sequencer_handshake(&hello, &keys_with(&key), [nonce_s; 32], FencingEpoch(3)).unwrap();
        assert_eq!(name, node());
        let (v, epoch) = hs.finish(&welcome, FencingEpoch(2)).unwrap();
        assert_eq!(epoch, FencingEpoch(3));
        (v, s)
    }

    fn heartbeat(nonce: u64) -> ToSequencer {
        ToSequencer::Heartbeat { nonce }
    }

    #[test]
    fn frames_pass_in_order_both_ways() {
        let (mut v, mut s) = pair(1, 2);
        for n in 0..5 {
            let frame = v.seal(&heartbeat(n));
            assert_eq!(s.open::<ToSequencer>(&frame).unwrap(), heartbeat(n));
            let answer = FromSequencer::Durable {
                request: RequestId(n),
                tx: TxId::from_bytes([1; 16]),
                first_seq: Seq(n + 1),
                earlier: false,
            };
            let frame = s.seal(&answer);
            assert_eq!(v.open::<FromSequencer>(&frame).unwrap(), answer);
        }
    }

    #[test]
    fn a_tampered_frame_is_refused_and_breaks_the_channel() {
        let (mut v, mut s) = pair(1, 2);
        let good = v.seal(&heartbeat(1));
        for i in 0..good.len() {
            let (mut v2, mut s2) = pair(1, 2);
            let mut bad = v2.seal(&heartbeat(1));
            bad[i] ^= 0x01;
            assert_eq!(
                s2.open::<ToSequencer>(&bad),
                Err(FrameError::BadMac),
                "byte {i}"
            );
            // Broken for good: even the genuine frame is refused now.
            let genuine = v2.seal(&heartbeat(2));
            assert_eq!(s2.open::<ToSequencer>(&genuine), Err(FrameError::Broken));
        }
        assert!(s.open::<ToSequencer>(&good).is_ok());
        let truncated = &v.seal(&heartbeat(2))[..20];
        assert_eq!(
            s.open::<ToSequencer>(truncated),
            Err(FrameError::BadLength(20))
        );
    }

    #[test]
    fn bodies_travel_encrypted() {
        let (mut v, mut s) = pair(1, 2);
        let secret = b"a coin's tag is cash to whoever reads it".to_vec();
        let call = ToSequencer::Payment {
            request: crate::wire::RequestId(1),
            call: crate::wire::PaymentCall::Acknowledge {
                ack: secret.clone(),
            },
        };
        let frame = v.seal(&call);
        assert!(
            !frame.windows(8).any(|w| secret.windows(8).any(|p| p == w)),
            "plaintext in the frame"
        );
        // The same message as the next frame is another ciphertext.
        let again = v.seal(&call);
        assert_ne!(frame[FRAME_HEADER_BYTES..], again[FRAME_HEADER_BYTES..]);
        assert_eq!(s.open::<ToSequencer>(&frame).unwrap(), call);
        assert_eq!(s.open::<ToSequencer>(&again).unwrap(), call);
    }

    #[test]
    fn split_halves_keep_the_numbering() {
        let (v, s) = pair(1, 2);
        let (mut v_send, mut v_receive) = v.split();
        let (mut s_send, mut s_receive) = s.split();
        let first = v_send.seal(&heartbeat(1));
        let second = v_send.seal(&heartbeat(2));
        assert!(s_receive.open::<ToSequencer>(&second).is_err());
        assert_eq!(
            s_receive.open::<ToSequencer>(&first),
            Err(FrameError::Broken)
        );
        let ack = FromSequencer::HeartbeatAck { nonce: 1 };
        let frame = s_send.seal(&ack);
        assert_eq!(v_receive.open::<FromSequencer>(&frame).unwrap(), ack);
    }

    #[test]
    fn a_replayed_frame_is_refused() {
        let (mut v, mut s) = pair(1, 2);
        let first = v.seal(&heartbeat(1));
        s.open::<ToSequencer>(&first).unwrap();
        assert_eq!(
            s.open::<ToSequencer>(&first),
            Err(FrameError::Replayed {
                got: 1,
                expected: 2
            })
        );
    }

    #[test]
    fn reordered_frames_are_refused() {
        let (mut v, mut s) = pair(1, 2);
        let _first = v.seal(&heartbeat(1));
        let second = v.seal(&heartbeat(2));
        assert_eq!(
            s.open::<ToSequencer>(&second),
            Err(FrameError::OutOfOrder {
                got: 2,
                expected: 1
            })
        );
    }

    #[test]
    fn a_frame_from_another_connection_is_refused() {
        // Same node, same key, different nonces: a different connection key.
        let (mut v1, _s1) = pair(1, 2);
        let (_v2, mut s2) = pair(3, 4);
        let frame = v1.seal(&heartbeat(1));
        assert_eq!(s2.open::<ToSequencer>(&frame), Err(FrameError::BadMac));
    }

    #[test]
    fn a_frame_reflected_to_its_sender_is_refused() {
        let (mut v, _s) = pair(1, 2);
        let frame = v.seal(&heartbeat(1));
        assert_eq!(v.open::<ToSequencer>(&frame), Err(FrameError::BadMac));
    }

    #[test]
    fn an_unknown_node_or_an_impostor_sequencer_is_refused() {
        let key = NodeKey::from_bytes(vec![7; 32]).unwrap();
        let (_hs, hello) = ValidatorHandshake::start(node(), key.clone(), [1; 32]);
        assert_eq!(
            sequencer_handshake(&hello, &NodeKeys::default(), [2; 32], FencingEpoch(1))
                .unwrap_err(),
            HandshakeError::UnknownNode("validator-1".into())
        );
        // A sequencer with another key for the node: its proof fails.
        let (hs, hello) = ValidatorHandshake::start(node(), key, [1; 32]);
        let other = NodeKey::from_bytes(vec![8; 32]).unwrap();
        let (_s, _, welcome) =
            sequencer_handshake(&hello, &keys_with(&other), [2; 32], FencingEpoch(1)).unwrap();
        assert_eq!(
            hs.finish(&welcome, FencingEpoch(0)).unwrap_err(),
            HandshakeError::BadProof
        );
    }

    #[test]
    fn a_sequencer_of_an_older_epoch_is_refused() {
        let key = NodeKey::from_bytes(vec![7; 32]).unwrap();
        let (hs, hello) = ValidatorHandshake::start(node(), key.clone(), [1; 32]);
        let (_s, _, welcome) =
            sequencer_handshake(&hello, &keys_with(&key), [2; 32], FencingEpoch(4)).unwrap();
        assert_eq!(
            hs.finish(&welcome, FencingEpoch(5)).unwrap_err(),
            HandshakeError::StaleEpoch { got: 4, seen: 5 }
        );
    }

    #[test]
    fn a_tampered_welcome_epoch_is_refused() {
        let key = NodeKey::from_bytes(vec![7; 32]).unwrap();
        let (hs, hello) = ValidatorHandshake::start(node(), key.clone(), [1; 32]);
        let (_s, _, welcome) =
            sequencer_handshake(&hello, &keys_with(&key), [2; 32], FencingEpoch(4)).unwrap();
        let mut parsed: Welcome = decode_handshake(&welcome).unwrap();
        parsed.epoch = FencingEpoch(9);
        let forged = encode_handshake(&parsed);
        assert_eq!(
            hs.finish(&forged, FencingEpoch(0)).unwrap_err(),
            HandshakeError::BadProof
        );
    }

    #[test]
    fn garbage_handshakes_are_typed_errors() {
        let keys = NodeKeys::default();
        for bytes in [
            &[][..],
            &[9, 1, 2][..],
            &[CLUSTER_WIRE_VERSION, 0xff, 0xff][..],
        ] {
            assert!(sequencer_handshake(bytes, &keys, [0; 32], FencingEpoch(1)).is_err());
        }
    }

    #[test]
    fn key_files_parse_strictly() {
        let hex32 = "00".repeat(32);
        let keys = NodeKeys::parse(&format!("# nodes\nv1 {hex32}\n\nv2 {hex32}\n")).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            NodeKeys::parse(&format!("v1 {hex32}\nv1 {hex32}")).unwrap_err(),
            KeyFileError::Duplicate("v1".into())
        );
        assert_eq!(
            NodeKeys::parse("v1 0011").unwrap_err(),
            KeyFileError::ShortKey
        );
        assert_eq!(NodeKeys::parse("v1").unwrap_err(), KeyFileError::BadLine(1));
        assert_eq!(
            NodeKeys::parse(&format!("v/1 {hex32}")).unwrap_err(),
            KeyFileError::BadName
        );
    }
}
