//! STUB: replaced by branch `reliable`.
#![allow(missing_docs, dead_code, clippy::todo)]
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ReliableConfig {
    pub receive_window: u16,
    pub retransmit_initial: Duration,
    pub retransmit_cap: Duration,
    pub max_retries: u32,
    pub ack_delay: Duration,
    pub slow_start: bool,
}
impl Default for ReliableConfig {
    fn default() -> Self {
        todo!()
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receive {
    Ack,
    InOrder,
    Buffered,
    Duplicate,
    OutOfWindow,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub session_id: u16,
    pub body: Vec<u8>,
}
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub sent: u64,
    pub retransmitted: u64,
    pub zlb_sent: u64,
    pub received: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub out_of_window: u64,
}
#[derive(Debug)]
pub struct ControlChannel {}
impl ControlChannel {
    pub fn new(_config: ReliableConfig) -> Self {
        todo!()
    }
    pub fn set_peer_tunnel_id(&mut self, _id: u16) {}
    pub fn peer_tunnel_id(&self) -> u16 {
        todo!()
    }
    pub fn set_peer_window(&mut self, _size: u16) {}
    pub fn send(&mut self, _session_id: u16, _body: Vec<u8>) {}
    pub fn receive(
        &mut self,
        _now: Instant,
        _ns: u16,
        _nr: u16,
        _sid: u16,
        _body: &[u8],
    ) -> Receive {
        todo!()
    }
    pub fn poll_deliver(&mut self) -> Option<Delivered> {
        todo!()
    }
    pub fn poll_transmit(&mut self, _now: Instant, _out: &mut Vec<u8>) -> bool {
        todo!()
    }
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }
    pub fn handle_timeout(&mut self, _now: Instant) {}
    pub fn ack_now(&mut self) {}
    pub fn is_failed(&self) -> bool {
        todo!()
    }
    pub fn is_idle(&self) -> bool {
        todo!()
    }
    pub fn unacked(&self) -> usize {
        todo!()
    }
    pub fn next_ns(&self) -> u16 {
        todo!()
    }
    pub fn next_nr(&self) -> u16 {
        todo!()
    }
    pub fn stats(&self) -> &ChannelStats {
        todo!()
    }
}
