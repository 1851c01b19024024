//! The option-negotiation automaton of RFC 1661 §4, shared by LCP, IPCP and
//! IPv6CP.
//!
//! The automaton owns the states, the Restart timer, the counters and the
//! packet Identifiers; the protocol that uses it owns option semantics and
//! plugs them in through [`Negotiator`]. Nothing here knows the PPP wire
//! format beyond the four-byte header that a Code-Reject copies: packets come
//! in as `(code, identifier, data)` and leave as [`Output::Send`], which the
//! protocol encodes behind its own PPP protocol number.
//!
//! It is sans-IO. The caller drives one [`Fsm`] like this:
//!
//! 1. Feed the administrative and lower-layer events: [`Fsm::open`],
//!    [`Fsm::close`], [`Fsm::up`], [`Fsm::down`].
//! 2. For every packet of this protocol from the peer call [`Fsm::receive`]
//!    with its Code, Identifier and the bytes after the header. Codes the
//!    protocol handles itself go elsewhere: a Protocol-Reject (LCP) or a
//!    Code-Reject the protocol wants to judge to [`Fsm::receive_reject`],
//!    Echo-Request, Echo-Reply and Discard-Request (LCP) to
//!    [`Fsm::receive_rxr`]. Everything else, including codes the protocol
//!    does not know, goes to `receive`, which answers unknown codes with a
//!    Code-Reject.
//! 3. Drain [`Fsm::poll_output`]: packets to send and This-Layer-Up/Down/
//!    Started/Finished signals for the layers around.
//! 4. Sleep until [`Fsm::poll_timeout`], then call [`Fsm::handle_timeout`]
//!    and go to 3.
//!
//! Implementation options of RFC 1661 §4: the passive option ([`FsmConfig::passive`])
//! is available; the restart option ("Open" in Opened, Closing, Stopping or
//! Stopped renegotiates) is left to the caller, which gets it by calling
//! [`Fsm::down`] then [`Fsm::up`], as §4.3 suggests.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counters and timer of §4.6, all configurable as the RFC requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmConfig {
    /// Restart timer: how long a Configure-Request or Terminate-Request
    /// waits for its answer. "SHOULD default to three (3) seconds."
    pub restart: Duration,
    /// Terminate-Requests sent without a Terminate-Ack before giving up.
    /// "SHOULD default to two (2) transmissions."
    pub max_terminate: u32,
    /// Configure-Requests sent without a reply before giving up.
    /// "SHOULD default to ten (10) transmissions."
    pub max_configure: u32,
    /// Configure-Naks sent without sending a Configure-Ack, after which
    /// further Naks become Configure-Rejects. "SHOULD default to five (5)."
    pub max_failure: u32,
    /// The §4.2 Stopped-state option: after the peer fails to answer our
    /// Configure-Requests, wait passively for its Configure-Request and skip
    /// This-Layer-Finished on TO- in Req-Sent, Ack-Rcvd and Ack-Sent.
    /// Default off (the table's tlf/3p).
    pub passive: bool,
}

impl Default for FsmConfig {
    fn default() -> Self {
        FsmConfig {
            restart: Duration::from_secs(3),
            max_terminate: 2,
            max_configure: 10,
            max_failure: 5,
            passive: false,
        }
    }
}

/// The ten states of §4.2, numbered as in the §4.1 table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// 0: lower layer down, no Open yet.
    Initial,
    /// 1: Open done, lower layer still down.
    Starting,
    /// 2: lower layer up, no Open.
    Closed,
    /// 3: the Open counterpart of Closed: finished, or waiting for the peer.
    Stopped,
    /// 4: Terminate-Request sent after a Close.
    Closing,
    /// 5: Terminate-Request sent or received while the link stays Open.
    Stopping,
    /// 6: Configure-Request sent, nothing acknowledged either way.
    ReqSent,
    /// 7: our Configure-Request acknowledged, waiting for the peer's.
    AckRcvd,
    /// 8: the peer's Configure-Request acknowledged, ours outstanding.
    AckSent,
    /// 9: both Configure-Requests acknowledged: the layer is up.
    Opened,
}

impl State {
    /// Every state, in the RFC's column order.
    pub const ALL: [State; 10] = [
        State::Initial,
        State::Starting,
        State::Closed,
        State::Stopped,
        State::Closing,
        State::Stopping,
        State::ReqSent,
        State::AckRcvd,
        State::AckSent,
        State::Opened,
    ];

    /// §4.1: "The states in which the Restart timer is running are
    /// identifiable by the presence of TO events."
    fn restart_timer_runs(self) -> bool {
        matches!(
            self,
            State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
        )
    }

    /// The three states where Configure packets are being exchanged.
    fn is_negotiating(self) -> bool {
        matches!(self, State::ReqSent | State::AckRcvd | State::AckSent)
    }
}

/// The packet Codes the automaton itself understands (§5); everything else is
/// `Unknown` and, given to [`Fsm::receive`], draws a Code-Reject (RUC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// 1
    ConfigureRequest,
    /// 2
    ConfigureAck,
    /// 3
    ConfigureNak,
    /// 4
    ConfigureReject,
    /// 5
    TerminateRequest,
    /// 6
    TerminateAck,
    /// 7
    CodeReject,
    /// Any other Code.
    Unknown(u8),
}

impl From<u8> for Code {
    fn from(value: u8) -> Self {
        match value {
            1 => Code::ConfigureRequest,
            2 => Code::ConfigureAck,
            3 => Code::ConfigureNak,
            4 => Code::ConfigureReject,
            5 => Code::TerminateRequest,
            6 => Code::TerminateAck,
            7 => Code::CodeReject,
            other => Code::Unknown(other),
        }
    }
}

impl From<Code> for u8 {
    fn from(code: Code) -> u8 {
        match code {
            Code::ConfigureRequest => 1,
            Code::ConfigureAck => 2,
            Code::ConfigureNak => 3,
            Code::ConfigureReject => 4,
            Code::TerminateRequest => 5,
            Code::TerminateAck => 6,
            Code::CodeReject => 7,
            Code::Unknown(other) => other,
        }
    }
}

/// The events of §4.3, named as in the RFC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Up: the lower layer is ready.
    Up,
    /// Down: the lower layer is gone.
    Down,
    /// Open: administratively allowed.
    Open,
    /// Close: administratively forbidden.
    Close,
    /// TO+: Restart timer expired, counter still above zero.
    ToPlus,
    /// TO-: Restart timer expired, counter exhausted.
    ToMinus,
    /// RCR+: good Configure-Request received.
    RcrPlus,
    /// RCR-: bad Configure-Request received (we Nak or Reject it).
    RcrMinus,
    /// RCA: Configure-Ack received.
    Rca,
    /// RCN: Configure-Nak or Configure-Reject received.
    Rcn,
    /// RTR: Terminate-Request received.
    Rtr,
    /// RTA: Terminate-Ack received.
    Rta,
    /// RUC: unknown Code received.
    Ruc,
    /// RXJ+: Code-Reject or Protocol-Reject we can live with.
    RxjPlus,
    /// RXJ-: catastrophic Code-Reject or Protocol-Reject.
    RxjMinus,
    /// RXR: Echo-Request, Echo-Reply or Discard-Request received.
    Rxr,
}

impl Event {
    /// Every event, in the RFC's row order.
    pub const ALL: [Event; 16] = [
        Event::Up,
        Event::Down,
        Event::Open,
        Event::Close,
        Event::ToPlus,
        Event::ToMinus,
        Event::RcrPlus,
        Event::RcrMinus,
        Event::Rca,
        Event::Rcn,
        Event::Rtr,
        Event::Rta,
        Event::Ruc,
        Event::RxjPlus,
        Event::RxjMinus,
        Event::Rxr,
    ];
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Event::Up => "Up",
            Event::Down => "Down",
            Event::Open => "Open",
            Event::Close => "Close",
            Event::ToPlus => "TO+",
            Event::ToMinus => "TO-",
            Event::RcrPlus => "RCR+",
            Event::RcrMinus => "RCR-",
            Event::Rca => "RCA",
            Event::Rcn => "RCN",
            Event::Rtr => "RTR",
            Event::Rta => "RTA",
            Event::Ruc => "RUC",
            Event::RxjPlus => "RXJ+",
            Event::RxjMinus => "RXJ-",
            Event::Rxr => "RXR",
        })
    }
}

/// The actions of §4.4, named as in the RFC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// tlu: This-Layer-Up.
    Tlu,
    /// tld: This-Layer-Down.
    Tld,
    /// tls: This-Layer-Started.
    Tls,
    /// tlf: This-Layer-Finished.
    Tlf,
    /// irc: Initialize-Restart-Count.
    Irc,
    /// zrc: Zero-Restart-Count.
    Zrc,
    /// scr: Send-Configure-Request.
    Scr,
    /// sca: Send-Configure-Ack.
    Sca,
    /// scn: Send-Configure-Nak/Rej.
    Scn,
    /// str: Send-Terminate-Request.
    Str,
    /// sta: Send-Terminate-Ack.
    Sta,
    /// scj: Send-Code-Reject.
    Scj,
    /// ser: Send-Echo-Reply.
    Ser,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Tlu => "tlu",
            Action::Tld => "tld",
            Action::Tls => "tls",
            Action::Tlf => "tlf",
            Action::Irc => "irc",
            Action::Zrc => "zrc",
            Action::Scr => "scr",
            Action::Sca => "sca",
            Action::Scn => "scn",
            Action::Str => "str",
            Action::Sta => "sta",
            Action::Scj => "scj",
            Action::Ser => "ser",
        })
    }
}

/// One cell of the §4.1 table: the actions, in the RFC's order, and the state
/// they lead to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// New state.
    pub next: State,
    /// Actions, in the order the RFC lists them.
    pub actions: &'static [Action],
}

/// The §4.1 state transition table. `None` is the RFC's dash: "an illegal
/// transition", which the automaton ignores (and counts).
///
/// The footnotes are not part of the cell: `r` (restart option) and `p`
/// (passive option) are implementation options, see the module doc; `x`
/// (crossed connection) is what the cell does.
pub fn transition(state: State, event: Event) -> Option<Transition> {
    use Action::*;
    use Event::*;
    use State::*;

    let (next, actions): (State, &'static [Action]) = match (state, event) {
        // Up   | 2 | irc,scr/6 | - | - | - | - | - | - | - | -
        (Initial, Up) => (Closed, &[]),
        (Starting, Up) => (ReqSent, &[Irc, Scr]),
        (_, Up) => return None,

        // Down | - | - | 0 | tls/1 | 0 | 1 | 1 | 1 | 1 | tld/1
        (Initial | Starting, Down) => return None,
        (Closed, Down) => (Initial, &[]),
        (Stopped, Down) => (Starting, &[Tls]),
        (Closing, Down) => (Initial, &[]),
        (Stopping | ReqSent | AckRcvd | AckSent, Down) => (Starting, &[]),
        (Opened, Down) => (Starting, &[Tld]),

        // Open | tls/1 | 1 | irc,scr/6 | 3r | 5r | 5r | 6 | 7 | 8 | 9r
        // (a Closing link that is opened again ends in Stopping, so the
        // Terminate exchange completes and the link stays available)
        (Initial, Open) => (Starting, &[Tls]),
        (Starting, Open) => (Starting, &[]),
        (Closed, Open) => (ReqSent, &[Irc, Scr]),
        (Stopped, Open) => (Stopped, &[]),
        (Closing | Stopping, Open) => (Stopping, &[]),
        (ReqSent | AckRcvd | AckSent | Opened, Open) => (state, &[]),

        // Close | 0 | tlf/0 | 2 | 2 | 4 | 4 | irc,str/4 (x3) | tld,irc,str/4
        (Initial, Close) => (Initial, &[]),
        (Starting, Close) => (Initial, &[Tlf]),
        (Closed | Stopped, Close) => (Closed, &[]),
        (Closing | Stopping, Close) => (Closing, &[]),
        (ReqSent | AckRcvd | AckSent, Close) => (Closing, &[Irc, Str]),
        (Opened, Close) => (Closing, &[Tld, Irc, Str]),

        // TO+ | - | - | - | - | str/4 | str/5 | scr/6 | scr/6 | scr/8 | -
        (Closing, ToPlus) => (Closing, &[Str]),
        (Stopping, ToPlus) => (Stopping, &[Str]),
        (ReqSent | AckRcvd, ToPlus) => (ReqSent, &[Scr]),
        (AckSent, ToPlus) => (AckSent, &[Scr]),
        (_, ToPlus) => return None,

        // TO- | - | - | - | - | tlf/2 | tlf/3 | tlf/3p | tlf/3p | tlf/3p | -
        (Closing, ToMinus) => (Closed, &[Tlf]),
        (Stopping | ReqSent | AckRcvd | AckSent, ToMinus) => (Stopped, &[Tlf]),
        (_, ToMinus) => return None,

        // No packet can arrive while the lower layer is down: every receive
        // event is a dash in Initial and Starting.
        (Initial | Starting, _) => return None,

        // RCR+ | sta/2 | irc,scr,sca/8 | 4 | 5 | sca/8 | sca,tlu/9 | sca/8 | tld,scr,sca/8
        (Closed, RcrPlus) => (Closed, &[Sta]),
        (Stopped, RcrPlus) => (AckSent, &[Irc, Scr, Sca]),
        (Closing | Stopping, RcrPlus) => (state, &[]),
        (ReqSent | AckSent, RcrPlus) => (AckSent, &[Sca]),
        (AckRcvd, RcrPlus) => (Opened, &[Sca, Tlu]),
        (Opened, RcrPlus) => (AckSent, &[Tld, Scr, Sca]),

        // RCR- | sta/2 | irc,scr,scn/6 | 4 | 5 | scn/6 | scn/7 | scn/6 | tld,scr,scn/6
        (Closed, RcrMinus) => (Closed, &[Sta]),
        (Stopped, RcrMinus) => (ReqSent, &[Irc, Scr, Scn]),
        (Closing | Stopping, RcrMinus) => (state, &[]),
        (ReqSent | AckSent, RcrMinus) => (ReqSent, &[Scn]),
        (AckRcvd, RcrMinus) => (AckRcvd, &[Scn]),
        (Opened, RcrMinus) => (ReqSent, &[Tld, Scr, Scn]),

        // RCA | sta/2 | sta/3 | 4 | 5 | irc/7 | scr/6x | irc,tlu/9 | tld,scr/6x
        (Closed | Stopped, Rca) => (state, &[Sta]),
        (Closing | Stopping, Rca) => (state, &[]),
        (ReqSent, Rca) => (AckRcvd, &[Irc]),
        (AckRcvd, Rca) => (ReqSent, &[Scr]),
        (AckSent, Rca) => (Opened, &[Irc, Tlu]),
        (Opened, Rca) => (ReqSent, &[Tld, Scr]),

        // RCN | sta/2 | sta/3 | 4 | 5 | irc,scr/6 | scr/6x | irc,scr/8 | tld,scr/6x
        (Closed | Stopped, Rcn) => (state, &[Sta]),
        (Closing | Stopping, Rcn) => (state, &[]),
        (ReqSent, Rcn) => (ReqSent, &[Irc, Scr]),
        (AckRcvd, Rcn) => (ReqSent, &[Scr]),
        (AckSent, Rcn) => (AckSent, &[Irc, Scr]),
        (Opened, Rcn) => (ReqSent, &[Tld, Scr]),

        // RTR | sta/2 | sta/3 | sta/4 | sta/5 | sta/6 | sta/6 | sta/6 | tld,zrc,sta/5
        (Closed | Stopped | Closing | Stopping, Rtr) => (state, &[Sta]),
        (ReqSent | AckRcvd | AckSent, Rtr) => (ReqSent, &[Sta]),
        (Opened, Rtr) => (Stopping, &[Tld, Zrc, Sta]),

        // RTA | 2 | 3 | tlf/2 | tlf/3 | 6 | 6 | 8 | tld,scr/6
        (Closed | Stopped, Rta) => (state, &[]),
        (Closing, Rta) => (Closed, &[Tlf]),
        (Stopping, Rta) => (Stopped, &[Tlf]),
        (ReqSent | AckRcvd, Rta) => (ReqSent, &[]),
        (AckSent, Rta) => (AckSent, &[]),
        (Opened, Rta) => (ReqSent, &[Tld, Scr]),

        // RUC | scj/2 | scj/3 | scj/4 | scj/5 | scj/6 | scj/7 | scj/8 | scj/9
        (_, Ruc) => (state, &[Scj]),

        // RXJ+ | 2 | 3 | 4 | 5 | 6 | 6 | 8 | 9
        (AckRcvd, RxjPlus) => (ReqSent, &[]),
        (_, RxjPlus) => (state, &[]),

        // RXJ- | tlf/2 | tlf/3 | tlf/2 | tlf/3 | tlf/3 | tlf/3 | tlf/3 | tld,irc,str/5
        (Closed | Closing, RxjMinus) => (Closed, &[Tlf]),
        (Stopped | Stopping | ReqSent | AckRcvd | AckSent, RxjMinus) => (Stopped, &[Tlf]),
        (Opened, RxjMinus) => (Stopping, &[Tld, Irc, Str]),

        // RXR | 2 | 3 | 4 | 5 | 6 | 7 | 8 | ser/9
        (Opened, Rxr) => (Opened, &[Ser]),
        (_, Rxr) => (state, &[]),
    };
    Some(Transition { next, actions })
}

/// How the protocol answers the peer's Configure-Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every option is acceptable: Configure-Ack echoing them (RCR+).
    Ack,
    /// Configure-Nak carrying these encoded options (RCR-).
    Nak(Vec<u8>),
    /// Configure-Reject carrying these encoded options (RCR-).
    Reject(Vec<u8>),
}

/// Option semantics of one protocol (LCP, IPCP, IPv6CP). The automaton owns
/// the states and decides when each method runs; the protocol decides what
/// the options say. All option lists are the encoded Options field (the
/// bytes after the four-byte header).
///
/// A `Negotiator` is borrowed for each call, so it may be a short-lived view
/// over the protocol's state and the caller's seeded RNG (LCP needs one for
/// its Magic-Number).
pub trait Negotiator {
    /// A new negotiation begins (the automaton leaves Starting, Closed,
    /// Stopped or Opened towards Req-Sent/Ack-Sent): go back to the options
    /// we want from the configuration and forget what the peer asked for.
    /// Called before the first [`Negotiator::build_request`] of the
    /// negotiation and, when the peer's Configure-Request starts it, before
    /// [`Negotiator::judge_request`].
    fn reset(&mut self) {}

    /// Options for our next Configure-Request. Retransmissions on timeout
    /// resend the previous bytes without calling this.
    fn build_request(&mut self) -> Vec<u8>;

    /// Judge the peer's Configure-Request. `reject_instead_of_nak` becomes
    /// true once Max-Failure Configure-Naks have been sent without an Ack
    /// (§4.6): options that would be Nak'd must now be Rejected, and no
    /// options of our own may be appended.
    fn judge_request(&mut self, options: &[u8], reject_instead_of_nak: bool) -> Verdict;

    /// The peer acknowledged our outstanding request; the automaton has
    /// already checked that `options` are exactly what we sent (§5.2).
    fn on_ack(&mut self, options: &[u8]);

    /// The peer Nak'd our outstanding request: adapt the next one. Return
    /// false if the packet is malformed; it is then silently discarded.
    fn on_nak(&mut self, options: &[u8]) -> bool;

    /// The peer Rejected options of our outstanding request: stop asking for
    /// them. Return false if the packet is malformed (not a subset of what
    /// we sent, §5.4) or names an option we cannot do without; it is then
    /// silently discarded, and our request keeps being retransmitted until
    /// Max-Configure ends the negotiation (TO-). A protocol that prefers to
    /// give up at once calls [`Fsm::close`] after `receive` returns.
    fn on_reject(&mut self, options: &[u8]) -> bool;
}

/// Whether every option in `rejected` appears, byte for byte, in
/// `request`: the check §5.4 asks of a Configure-Reject ("the
/// Configuration Options in a Configure-Reject MUST be a subset of those in
/// the last transmitted Configure-Request"; the options are returned
/// "unmodified"). A malformed list is no subset. For
/// [`Negotiator::on_reject`] implementations, which can rebuild the request
/// they sent.
pub fn is_option_subset(rejected: &[u8], request: &[u8]) -> bool {
    use crate::wire::ppp::options::OptionIter;
    let Ok(sent) = OptionIter::new(request).collect::<Result<Vec<_>, _>>() else {
        return false;
    };
    OptionIter::new(rejected)
        .all(|option| option.is_ok_and(|option| sent.iter().any(|s| s.bytes == option.bytes)))
}

/// What the automaton asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a packet of this protocol. `data` is everything after the
    /// four-byte header (Code, Identifier, Length).
    Send {
        /// Packet Code.
        code: Code,
        /// Packet Identifier.
        id: u8,
        /// Options, Terminate data or the rejected packet.
        data: Vec<u8>,
    },
    /// tlu: the layer is up (LCP: go to authentication; NCP: route traffic).
    LayerUp,
    /// tld: the layer is leaving Opened.
    LayerDown,
    /// tls: the layer needs its lower layer (LCP: bring the link up; NCP:
    /// signal Open to LCP).
    LayerStarted,
    /// tlf: the layer no longer needs its lower layer.
    LayerFinished,
}

/// Counters of one automaton; plain integers, summed by whoever scrapes them.
/// 16 bits (saturating) each: there are three automata per session and up
/// to a million sessions, and one session's negotiation that counts past
/// 65,535 of anything has long failed by Max-Configure or Max-Failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsmStats {
    /// Configure-Requests sent, retransmissions included.
    pub configure_requests: u16,
    /// Of those, retransmissions of an unanswered request.
    pub retransmissions: u16,
    /// Configure-Acks sent.
    pub acks_sent: u16,
    /// Configure-Naks sent.
    pub naks_sent: u16,
    /// Configure-Rejects sent.
    pub rejects_sent: u16,
    /// Configure-Naks accepted from the peer.
    pub naks_received: u16,
    /// Configure-Rejects accepted from the peer.
    pub rejects_received: u16,
    /// Terminate-Requests sent, retransmissions included.
    pub terminate_requests: u16,
    /// Terminate-Acks sent.
    pub terminate_acks: u16,
    /// Code-Rejects sent.
    pub code_rejects: u16,
    /// Restart timer expiries (TO+ and TO-).
    pub timeouts: u16,
    /// Replies silently discarded: stale or mismatched Identifier, options
    /// not matching our request, malformed Nak/Reject, empty Code-Reject.
    pub discarded: u16,
    /// Events the table marks illegal ('-'), ignored.
    pub illegal_events: u16,
}

/// A request of ours (Configure- or Terminate-Request) and whether a valid
/// reply has been received for it.
#[derive(Debug, Clone)]
struct Sent {
    id: u8,
    data: Vec<u8>,
    answered: bool,
}

/// The received packet behind an event, for the actions that answer it.
#[derive(Debug, Default)]
struct Inbound<'a> {
    code: u8,
    id: u8,
    data: &'a [u8],
    /// Our Configure-Nak or Configure-Reject for an RCR-.
    reply: Option<(Code, Vec<u8>)>,
}

/// Stands in for the protocol on events whose table cells never build or
/// judge options (Down, Close, RXJ±, RXR).
struct NoOptions;

impl Negotiator for NoOptions {
    fn build_request(&mut self) -> Vec<u8> {
        Vec::new()
    }
    fn judge_request(&mut self, _: &[u8], _: bool) -> Verdict {
        Verdict::Ack
    }
    fn on_ack(&mut self, _: &[u8]) {}
    fn on_nak(&mut self, _: &[u8]) -> bool {
        false
    }
    fn on_reject(&mut self, _: &[u8]) -> bool {
        false
    }
}

/// One RFC 1661 option-negotiation automaton.
#[derive(Debug)]
pub struct Fsm {
    /// Shared: every automaton of a daemon runs with the same settings.
    config: Arc<FsmConfig>,
    state: State,
    /// §4.6 Restart counter.
    restart_counter: u32,
    /// Configure-Naks sent since we last sent a Configure-Ack (Max-Failure).
    naks_since_ack: u32,
    /// Identifier for the next new request or Code-Reject.
    next_id: u8,
    /// Requests and outputs in flight; `None` while idle (see [`Work`]).
    work: Option<Box<Work>>,
    stats: FsmStats,
}

/// What an automaton holds only while it negotiates, terminates or has
/// output for its caller. Boxed apart because an up link spends its life
/// with three idle automata (`trim` frees it) and a daemon holds up to a
/// million links.
#[derive(Debug, Default)]
struct Work {
    /// Restart timer deadline, `None` when it is not running.
    restart_at: Option<Instant>,
    /// Our last Configure-Request.
    request: Option<Sent>,
    /// Our last Terminate-Request.
    terminate: Option<Sent>,
    /// Data of the next new Terminate-Request (the reason given to `close`).
    terminate_reason: Vec<u8>,
    output: VecDeque<Output>,
}

impl Work {
    fn is_empty(&self) -> bool {
        self.restart_at.is_none()
            && self.request.is_none()
            && self.terminate.is_none()
            && self.terminate_reason.is_empty()
            && self.output.is_empty()
    }
}

/// An automaton with nothing in flight (no timer, no request or output
/// kept), reduced to what its future depends on: see [`Fsm::idle`].
#[derive(Debug, Clone, Copy)]
pub struct IdleFsm {
    state: State,
    next_id: u8,
    restart_counter: u32,
    naks_since_ack: u32,
}

impl IdleFsm {
    /// The state it was left in.
    pub fn state(&self) -> State {
        self.state
    }
}

impl Fsm {
    /// An automaton in the Initial state.
    pub fn new(config: impl Into<Arc<FsmConfig>>) -> Self {
        Fsm {
            config: config.into(),
            state: State::Initial,
            restart_counter: 0,
            naks_since_ack: 0,
            next_id: 0,
            work: None,
            stats: FsmStats::default(),
        }
    }

    /// Enter Opened directly, without a negotiation of our own: the options
    /// were agreed elsewhere (RFC 2661 §4.4.5 proxy LCP, where the LAC
    /// negotiated with the subscriber and forwards the result). No output:
    /// the caller starts the next phase itself.
    pub fn adopt_opened(&mut self) {
        self.state = State::Opened;
        self.stop_timer();
        self.restart_counter = 0;
        self.naks_since_ack = 0;
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &FsmConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &FsmStats {
        &self.stats
    }

    /// Up: the lower layer can carry packets (LCP: the L2TP session is
    /// established; NCP: LCP reached This-Layer-Up).
    pub fn up<N: Negotiator + ?Sized>(&mut self, now: Instant, negotiator: &mut N) {
        self.dispatch(now, Event::Up, &Inbound::default(), negotiator);
    }

    /// Down: the lower layer is gone.
    pub fn down(&mut self, now: Instant) {
        self.dispatch(now, Event::Down, &Inbound::default(), &mut NoOptions);
    }

    /// Open: the layer may be opened.
    pub fn open<N: Negotiator + ?Sized>(&mut self, now: Instant, negotiator: &mut N) {
        self.dispatch(now, Event::Open, &Inbound::default(), negotiator);
    }

    /// Close: the layer must be closed; `reason` becomes the data of the
    /// Terminate-Request (§5.5 leaves its contents to the implementation).
    pub fn close(&mut self, now: Instant, reason: Vec<u8>) {
        self.work().terminate_reason = reason;
        self.dispatch(now, Event::Close, &Inbound::default(), &mut NoOptions);
        // A cell without str leaves the reason unused; it must not leak into
        // a later Terminate-Request (RXJ- in Opened).
        if let Some(work) = &mut self.work {
            work.terminate_reason.clear();
        }
    }

    /// A packet of this protocol from the peer: its Code, Identifier and the
    /// bytes after the four-byte header.
    pub fn receive<N: Negotiator + ?Sized>(
        &mut self,
        now: Instant,
        code: Code,
        id: u8,
        data: &[u8],
        negotiator: &mut N,
    ) {
        // Normalise `Unknown(1)` and friends to their named Codes.
        let code = Code::from(u8::from(code));
        let mut inbound = Inbound {
            code: code.into(),
            id,
            data,
            reply: None,
        };
        let event = match code {
            Code::ConfigureRequest => {
                // Only Stopped, the negotiating states and Opened tell RCR+
                // from RCR- (everywhere else both cells are the same), so only
                // there is the request judged.
                if matches!(self.state, State::Stopped | State::Opened) {
                    // The peer's request starts a new negotiation.
                    self.begin_negotiation(negotiator);
                }
                if matches!(self.state, State::Stopped | State::Opened)
                    || self.state.is_negotiating()
                {
                    // §4.6 Max-Failure: "Any further Configure-Nak packets
                    // for peer requested options are converted to
                    // Configure-Reject packets."
                    let reject_instead = self.naks_since_ack >= self.config.max_failure;
                    match negotiator.judge_request(data, reject_instead) {
                        Verdict::Ack => Event::RcrPlus,
                        Verdict::Nak(options) => {
                            inbound.reply = Some((Code::ConfigureNak, options));
                            Event::RcrMinus
                        }
                        Verdict::Reject(options) => {
                            inbound.reply = Some((Code::ConfigureReject, options));
                            Event::RcrMinus
                        }
                    }
                } else {
                    Event::RcrPlus
                }
            }
            Code::ConfigureAck => {
                if self.state.is_negotiating() || self.state == State::Opened {
                    // §5.2: "On reception of a Configure-Ack, the Identifier
                    // field MUST match that of the last transmitted
                    // Configure-Request. Additionally, the Configuration
                    // Options in a Configure-Ack MUST exactly match those of
                    // the last transmitted Configure-Request. Invalid packets
                    // are silently discarded."
                    let Some(request) = self.unanswered_request(id) else {
                        self.stats.discarded = self.stats.discarded.saturating_add(1);
                        return;
                    };
                    if request.data != data {
                        self.stats.discarded = self.stats.discarded.saturating_add(1);
                        return;
                    }
                    request.answered = true;
                    negotiator.on_ack(data);
                }
                Event::Rca
            }
            Code::ConfigureNak | Code::ConfigureReject => {
                if self.state.is_negotiating() || self.state == State::Opened {
                    // §5.3/§5.4: the Identifier MUST match the last
                    // transmitted Configure-Request; invalid packets are
                    // silently discarded.
                    if self.unanswered_request(id).is_none() {
                        self.stats.discarded = self.stats.discarded.saturating_add(1);
                        return;
                    }
                    let valid = if code == Code::ConfigureNak {
                        negotiator.on_nak(data)
                    } else {
                        negotiator.on_reject(data)
                    };
                    if !valid {
                        self.stats.discarded = self.stats.discarded.saturating_add(1);
                        return;
                    }
                    if let Some(request) = self.unanswered_request(id) {
                        request.answered = true;
                    }
                    if code == Code::ConfigureNak {
                        self.stats.naks_received = self.stats.naks_received.saturating_add(1);
                    } else {
                        self.stats.rejects_received = self.stats.rejects_received.saturating_add(1);
                    }
                }
                Event::Rcn
            }
            Code::TerminateRequest => Event::Rtr,
            // §5.5 ties a Terminate-Ack to no Identifier on reception, and an
            // unelicited one means something ("the peer is in the Closed or
            // Stopped states"), so every Terminate-Ack is an RTA.
            Code::TerminateAck => Event::Rta,
            Code::CodeReject => {
                // §5.6: rejecting one of the Codes 1-7 every control protocol
                // needs is catastrophic (RXJ-); rejecting an extension Code
                // is not (RXJ+). A protocol that wants another judgement
                // calls `receive_reject` itself.
                let Some(&rejected) = data.first() else {
                    self.stats.discarded = self.stats.discarded.saturating_add(1);
                    return;
                };
                if matches!(Code::from(rejected), Code::Unknown(_)) {
                    Event::RxjPlus
                } else {
                    Event::RxjMinus
                }
            }
            Code::Unknown(_) => Event::Ruc,
        };
        self.dispatch(now, event, &inbound, negotiator);
    }

    /// A Code-Reject or (LCP) Protocol-Reject the caller has judged:
    /// `catastrophic` makes it RXJ-, otherwise RXJ+.
    pub fn receive_reject(&mut self, now: Instant, catastrophic: bool) {
        let event = if catastrophic {
            Event::RxjMinus
        } else {
            Event::RxjPlus
        };
        self.dispatch(now, event, &Inbound::default(), &mut NoOptions);
    }

    /// RXR: an Echo-Request, Echo-Reply or Discard-Request (LCP) arrived.
    /// Returns true when the table says ser, that is in Opened: the caller
    /// answers an Echo-Request with an Echo-Reply (it knows the
    /// Magic-Number) and accepts an Echo-Reply. False: discard the packet.
    pub fn receive_rxr(&mut self, now: Instant) -> bool {
        self.dispatch(now, Event::Rxr, &Inbound::default(), &mut NoOptions)
    }

    /// Next thing for the caller to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.work.as_mut()?.output.pop_front()
    }

    /// When [`Fsm::handle_timeout`] is due: the Restart timer, if running.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.work.as_ref()?.restart_at
    }

    /// Fire the Restart timer if it is due at `now`.
    pub fn handle_timeout<N: Negotiator + ?Sized>(&mut self, now: Instant, negotiator: &mut N) {
        let Some(at) = self.poll_timeout() else {
            return;
        };
        if at > now {
            return;
        }
        self.stop_timer();
        self.stats.timeouts = self.stats.timeouts.saturating_add(1);
        // §4.3: "The TO+ event indicates that the Restart counter continues
        // to be greater than zero ... The TO- event indicates that the
        // Restart counter is not greater than zero".
        let event = if self.restart_counter > 0 {
            Event::ToPlus
        } else {
            Event::ToMinus
        };
        self.dispatch(now, event, &Inbound::default(), negotiator);
    }

    /// Our last Configure-Request, if `id` is its Identifier and no valid
    /// reply to it has arrived yet. §5.1 makes us change the Identifier
    /// "whenever a valid reply has been received", so a second reply to the
    /// same request can only be a duplicate (the peer answering both copies
    /// of a retransmitted request) and is stale.
    fn unanswered_request(&mut self, id: u8) -> Option<&mut Sent> {
        self.work
            .as_mut()?
            .request
            .as_mut()
            .filter(|request| request.id == id && !request.answered)
    }

    /// Free what an idle automaton no longer needs: one that is neither
    /// negotiating nor waiting on its Restart timer (Opened, and the
    /// Initial, Starting, Closed and Stopped states an NCP ends in) keeps
    /// no copy of its last Configure- or Terminate-Request, and empty
    /// queues give their memory back. The copies are only read to match a
    /// reply while negotiating (an Opened automaton's request has been
    /// answered) and to retransmit on TO+, which needs the timer; the next
    /// request from these states is a new one. The state, counters and
    /// timers are untouched, so behaviour is the same; a link holds three
    /// of these for its whole life, and a daemon a million links.
    pub fn trim(&mut self) {
        let Some(work) = &mut self.work else {
            return;
        };
        if !self.state.is_negotiating() && work.restart_at.is_none() {
            work.request = None;
            work.terminate = None;
        }
        if work.is_empty() {
            self.work = None;
        } else if work.output.is_empty() {
            work.output = VecDeque::new();
        }
    }

    /// This automaton without its settings, when it is idle: no timer
    /// running and nothing kept for a request or the caller (call
    /// [`Fsm::trim`] first). [`Fsm::from_idle`] gives it back unchanged
    /// but for [`Fsm::stats`], which start again from zero.
    pub fn idle(&self) -> Option<IdleFsm> {
        self.work.is_none().then_some(IdleFsm {
            state: self.state,
            next_id: self.next_id,
            restart_counter: self.restart_counter,
            naks_since_ack: self.naks_since_ack,
        })
    }

    /// The automaton [`Fsm::idle`] reduced.
    pub fn from_idle(config: Arc<FsmConfig>, idle: IdleFsm) -> Self {
        Fsm {
            config,
            state: idle.state,
            restart_counter: idle.restart_counter,
            naks_since_ack: idle.naks_since_ack,
            next_id: idle.next_id,
            work: None,
            stats: FsmStats::default(),
        }
    }

    /// The in-flight state, created when first needed.
    fn work(&mut self) -> &mut Work {
        self.work.get_or_insert_with(Box::default)
    }

    fn fresh_id(&mut self) -> u8 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    fn begin_negotiation<N: Negotiator + ?Sized>(&mut self, negotiator: &mut N) {
        negotiator.reset();
        self.naks_since_ack = 0;
        if let Some(work) = &mut self.work {
            work.request = None;
        }
    }

    /// Start (or restart) the Restart timer. A `restart` too large to add to
    /// `now` means "never".
    fn start_timer(&mut self, now: Instant) {
        let at = now.checked_add(self.config.restart);
        self.work().restart_at = at;
    }

    fn stop_timer(&mut self) {
        if let Some(work) = &mut self.work {
            work.restart_at = None;
        }
    }

    /// Apply one event: look up its table cell and perform the actions in
    /// the RFC's order. Returns true if the cell said ser.
    fn dispatch<N: Negotiator + ?Sized>(
        &mut self,
        now: Instant,
        event: Event,
        inbound: &Inbound<'_>,
        negotiator: &mut N,
    ) -> bool {
        let from = self.state;
        let Some(cell) = transition(from, event) else {
            self.stats.illegal_events = self.stats.illegal_events.saturating_add(1);
            return false;
        };
        let is_rcr = matches!(event, Event::RcrPlus | Event::RcrMinus);
        if cell.actions.contains(&Action::Scr) && !from.is_negotiating() && !is_rcr {
            // Up in Starting, Open in Closed, RTA/RCA/RCN in Opened: a new
            // negotiation (an RCR already began it before being judged).
            self.begin_negotiation(negotiator);
        }
        let mut ser = false;
        for &action in cell.actions {
            match action {
                Action::Tlu => self.work().output.push_back(Output::LayerUp),
                Action::Tld => self.work().output.push_back(Output::LayerDown),
                Action::Tls => self.work().output.push_back(Output::LayerStarted),
                Action::Tlf => {
                    // §4.2 Stopped, implementation option: a passive
                    // automaton "waits passively for the peer to send
                    // Configure-Requests", so "the This-Layer-Finished action
                    // is not used for the TO- event in states Req-Sent,
                    // Ack-Rcvd and Ack-Sent."
                    let passive_wait =
                        self.config.passive && event == Event::ToMinus && from.is_negotiating();
                    if !passive_wait {
                        self.work().output.push_back(Output::LayerFinished);
                    }
                }
                Action::Irc => {
                    // §4.4 irc: "sets the Restart counter to the appropriate
                    // value (Max-Terminate or Max-Configure)" -- the one for
                    // the request that follows in the same cell.
                    self.restart_counter = if cell.actions.contains(&Action::Str) {
                        self.config.max_terminate
                    } else {
                        self.config.max_configure
                    };
                }
                Action::Zrc => {
                    // §4.4 zrc: zero the counter so the next expiry is TO-,
                    // and (MUST) set the timer, to give the peer time to
                    // receive our Terminate-Ack before we finish.
                    self.restart_counter = 0;
                    self.start_timer(now);
                }
                Action::Scr => self.send_configure_request(now, event, negotiator),
                Action::Sca => {
                    // §5.2: the Ack copies the Identifier and lists the
                    // options "exactly" as received.
                    self.work().output.push_back(Output::Send {
                        code: Code::ConfigureAck,
                        id: inbound.id,
                        data: inbound.data.to_vec(),
                    });
                    self.naks_since_ack = 0;
                    self.stats.acks_sent = self.stats.acks_sent.saturating_add(1);
                }
                Action::Scn => {
                    if let Some((code, options)) = &inbound.reply {
                        if *code == Code::ConfigureNak {
                            self.naks_since_ack = self.naks_since_ack.saturating_add(1);
                            self.stats.naks_sent = self.stats.naks_sent.saturating_add(1);
                        } else {
                            self.stats.rejects_sent = self.stats.rejects_sent.saturating_add(1);
                        }
                        self.work().output.push_back(Output::Send {
                            code: *code,
                            id: inbound.id,
                            data: options.clone(),
                        });
                    }
                }
                Action::Str => self.send_terminate_request(now, event),
                Action::Sta => {
                    // §5.5: the Terminate-Ack copies the Identifier of the
                    // packet it answers.
                    self.work().output.push_back(Output::Send {
                        code: Code::TerminateAck,
                        id: inbound.id,
                        data: Vec::new(),
                    });
                    self.stats.terminate_acks = self.stats.terminate_acks.saturating_add(1);
                }
                Action::Scj => {
                    // §5.6: the Rejected-Packet is a copy of the packet from
                    // its Code field on, and the Identifier "MUST be changed
                    // for each Code-Reject sent". Truncating it to the peer's
                    // MRU is left to the encoder, which knows the MRU.
                    let max_data = usize::from(u16::MAX) - 4;
                    let data = &inbound.data[..inbound.data.len().min(max_data)];
                    let length = u16::try_from(data.len() + 4).unwrap_or(u16::MAX);
                    let mut rejected = Vec::with_capacity(data.len() + 4);
                    rejected.push(inbound.code);
                    rejected.push(inbound.id);
                    rejected.extend_from_slice(&length.to_be_bytes());
                    rejected.extend_from_slice(data);
                    let id = self.fresh_id();
                    self.work().output.push_back(Output::Send {
                        code: Code::CodeReject,
                        id,
                        data: rejected,
                    });
                    self.stats.code_rejects = self.stats.code_rejects.saturating_add(1);
                }
                Action::Ser => ser = true,
            }
        }
        self.state = cell.next;
        // §4.6: "The Restart timer is stopped when transitioning from any
        // state where the timer is running to a state where the timer is not
        // running."
        if !self.state.restart_timer_runs() {
            self.stop_timer();
        }
        ser
    }

    /// scr. §4.4: the Restart timer is started and the Restart counter is
    /// decremented for each Configure-Request sent. §5.1: the Identifier
    /// changes whenever the options change or a valid reply was received;
    /// "for retransmissions, the Identifier MAY remain unchanged", and we
    /// keep it (with the same bytes) so that a reply to any copy counts.
    fn send_configure_request<N: Negotiator + ?Sized>(
        &mut self,
        now: Instant,
        event: Event,
        negotiator: &mut N,
    ) {
        let unanswered = self
            .work
            .as_ref()
            .and_then(|work| work.request.as_ref())
            .filter(|request| !request.answered);
        let retransmit = event == Event::ToPlus && unanswered.is_some();
        let (id, data) = match unanswered {
            Some(request) if retransmit => (request.id, request.data.clone()),
            _ => {
                let data = negotiator.build_request();
                let id = self.fresh_id();
                self.work().request = Some(Sent {
                    id,
                    data: data.clone(),
                    answered: false,
                });
                (id, data)
            }
        };
        self.work().output.push_back(Output::Send {
            code: Code::ConfigureRequest,
            id,
            data,
        });
        self.restart_counter = self.restart_counter.saturating_sub(1);
        self.start_timer(now);
        self.stats.configure_requests = self.stats.configure_requests.saturating_add(1);
        if retransmit {
            self.stats.retransmissions = self.stats.retransmissions.saturating_add(1);
        }
    }

    /// str. Same counter and timer rules as scr (§4.4); a retransmission on
    /// TO+ keeps the Identifier and data, a new Terminate-Request gets a new
    /// Identifier (§5.5).
    fn send_terminate_request(&mut self, now: Instant, event: Event) {
        let previous = self.work.as_ref().and_then(|work| work.terminate.as_ref());
        let (id, data) = match previous {
            Some(request) if event == Event::ToPlus => (request.id, request.data.clone()),
            _ => {
                let data = std::mem::take(&mut self.work().terminate_reason);
                let id = self.fresh_id();
                self.work().terminate = Some(Sent {
                    id,
                    data: data.clone(),
                    answered: false,
                });
                (id, data)
            }
        };
        self.work().output.push_back(Output::Send {
            code: Code::TerminateRequest,
            id,
            data,
        });
        self.restart_counter = self.restart_counter.saturating_sub(1);
        self.start_timer(now);
        self.stats.terminate_requests = self.stats.terminate_requests.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    // ---------------------------------------------------------------------
    // A toy option format for the test protocols: `[type, value]` pairs.
    // ---------------------------------------------------------------------

    type Opt = [u8; 2];

    fn encode(options: &[Opt]) -> Vec<u8> {
        options.concat()
    }

    fn decode(bytes: &[u8]) -> Option<Vec<Opt>> {
        if bytes.len() % 2 != 0 {
            return None;
        }
        Some(bytes.chunks_exact(2).map(|c| [c[0], c[1]]).collect())
    }

    /// A configurable protocol: what it asks for, and how it judges the peer.
    #[derive(Debug, Clone, Default)]
    struct TestNeg {
        /// What `reset` restores.
        initial_want: Vec<Opt>,
        /// What the next Configure-Request asks for.
        want: Vec<Opt>,
        /// The peer's option of this type must carry this value; else Nak
        /// (Reject once told to).
        insist: Option<Opt>,
        /// The peer's options of this type are rejected.
        reject_type: Option<u8>,
        /// Adopt the values a Nak suggests.
        accept_naks: bool,
        /// An option type we cannot drop when rejected.
        required: Option<u8>,
        acked: Option<Vec<u8>>,
        resets: u32,
        reject_flags: Vec<bool>,
    }

    impl TestNeg {
        /// Asks for `options`, acks whatever the peer asks for.
        fn wanting(options: &[Opt]) -> Self {
            TestNeg {
                initial_want: options.to_vec(),
                want: options.to_vec(),
                accept_naks: true,
                ..TestNeg::default()
            }
        }
    }

    impl Negotiator for TestNeg {
        fn reset(&mut self) {
            self.resets += 1;
            self.want = self.initial_want.clone();
        }

        fn build_request(&mut self) -> Vec<u8> {
            encode(&self.want)
        }

        fn judge_request(&mut self, options: &[u8], reject_instead_of_nak: bool) -> Verdict {
            self.reject_flags.push(reject_instead_of_nak);
            let Some(options) = decode(options) else {
                return Verdict::Reject(options.to_vec());
            };
            let rejected: Vec<Opt> = options
                .iter()
                .filter(|o| Some(o[0]) == self.reject_type)
                .copied()
                .collect();
            if !rejected.is_empty() {
                return Verdict::Reject(encode(&rejected));
            }
            if let Some([kind, value]) = self.insist {
                if let Some(bad) = options.iter().find(|o| o[0] == kind && o[1] != value) {
                    return if reject_instead_of_nak {
                        Verdict::Reject(encode(&[*bad]))
                    } else {
                        Verdict::Nak(encode(&[[kind, value]]))
                    };
                }
            }
            Verdict::Ack
        }

        fn on_ack(&mut self, options: &[u8]) {
            self.acked = Some(options.to_vec());
        }

        fn on_nak(&mut self, options: &[u8]) -> bool {
            let Some(options) = decode(options) else {
                return false;
            };
            if self.accept_naks {
                for [kind, value] in options {
                    if let Some(w) = self.want.iter_mut().find(|w| w[0] == kind) {
                        w[1] = value;
                    }
                }
            }
            true
        }

        fn on_reject(&mut self, options: &[u8]) -> bool {
            let Some(options) = decode(options) else {
                return false;
            };
            if options
                .iter()
                .any(|o| Some(o[0]) == self.required || !self.want.contains(o))
            {
                return false;
            }
            self.want.retain(|w| !options.contains(w));
            true
        }
    }

    // ---------------------------------------------------------------------
    // Two automata over an in-memory link, with a clock that jumps.
    // ---------------------------------------------------------------------

    #[derive(Debug)]
    struct Side {
        fsm: Fsm,
        neg: TestNeg,
        /// Every packet sent: when, Code, Identifier, data.
        sent: Vec<(Instant, Code, u8, Vec<u8>)>,
        /// Every layer signal, with its time.
        layer: Vec<(Instant, Output)>,
    }

    impl Side {
        fn new(neg: TestNeg) -> Self {
            Side {
                fsm: Fsm::new(FsmConfig::default()),
                neg,
                sent: Vec::new(),
                layer: Vec::new(),
            }
        }

        fn signals(&self) -> Vec<Output> {
            self.layer.iter().map(|(_, o)| o.clone()).collect()
        }

        fn count(&self, signal: &Output) -> usize {
            self.layer.iter().filter(|(_, o)| o == signal).count()
        }

        fn sent_codes(&self) -> Vec<Code> {
            self.sent.iter().map(|s| s.1).collect()
        }
    }

    /// Drain `from`'s output; deliver packets to `to` when the link is up.
    fn transfer(from: &mut Side, to: &mut Side, now: Instant, deliver: bool) -> bool {
        let mut moved = false;
        while let Some(out) = from.fsm.poll_output() {
            moved = true;
            match out {
                Output::Send { code, id, data } => {
                    if deliver {
                        to.fsm.receive(now, code, id, &data, &mut to.neg);
                    }
                    from.sent.push((now, code, id, data));
                }
                signal => from.layer.push((now, signal)),
            }
        }
        moved
    }

    struct Pair {
        a: Side,
        b: Side,
        t0: Instant,
        now: Instant,
        a_to_b: bool,
        b_to_a: bool,
    }

    impl Pair {
        fn new(a: TestNeg, b: TestNeg) -> Self {
            let t0 = Instant::now();
            Pair {
                a: Side::new(a),
                b: Side::new(b),
                t0,
                now: t0,
                a_to_b: true,
                b_to_a: true,
            }
        }

        /// Move packets both ways until neither side has anything to say.
        fn settle(&mut self) {
            for _ in 0..10_000 {
                let ab = transfer(&mut self.a, &mut self.b, self.now, self.a_to_b);
                let ba = transfer(&mut self.b, &mut self.a, self.now, self.b_to_a);
                if !ab && !ba {
                    return;
                }
            }
            panic!("the automata never went quiet");
        }

        /// Jump from deadline to deadline until `end`, settling after each.
        fn run_until(&mut self, end: Instant) {
            self.settle();
            loop {
                let next = [self.a.fsm.poll_timeout(), self.b.fsm.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                match next {
                    Some(at) if at <= end => {
                        self.now = at;
                        self.a.fsm.handle_timeout(at, &mut self.a.neg);
                        self.b.fsm.handle_timeout(at, &mut self.b.neg);
                        self.settle();
                    }
                    _ => break,
                }
            }
            self.now = self.now.max(end);
        }

        /// Open and Up on both ends at once, then let them talk.
        fn open_both(&mut self) {
            let now = self.now;
            self.a.fsm.open(now, &mut self.a.neg);
            self.b.fsm.open(now, &mut self.b.neg);
            self.a.fsm.up(now, &mut self.a.neg);
            self.b.fsm.up(now, &mut self.b.neg);
            self.settle();
        }

        fn opened(a: TestNeg, b: TestNeg) -> Self {
            let mut pair = Pair::new(a, b);
            pair.open_both();
            assert_eq!(pair.a.fsm.state(), State::Opened);
            assert_eq!(pair.b.fsm.state(), State::Opened);
            pair
        }
    }

    /// An Opened automaton with nothing in flight keeps no `Work` once
    /// trimmed, and behaves the same: the peer's next Configure-Request
    /// renegotiates (RFC 1661 §4.1, Opened + RCR: tld, scr, sca).
    #[test]
    fn trim_frees_an_idle_opened_automaton() {
        let mut pair = Pair::opened(TestNeg::wanting(&[[1, 5]]), TestNeg::wanting(&[[2, 9]]));
        pair.a.fsm.trim();
        assert!(pair.a.fsm.work.is_none());
        assert_eq!(pair.a.fsm.poll_timeout(), None);
        let now = pair.now;
        pair.a
            .fsm
            .receive(now, Code::ConfigureRequest, 77, &[2, 9], &mut pair.a.neg);
        let out = drain(&mut pair.a.fsm);
        assert_eq!(out[0], Output::LayerDown);
        assert!(matches!(
            out[1],
            Output::Send {
                code: Code::ConfigureRequest,
                ..
            }
        ));
        assert!(matches!(
            out[2],
            Output::Send {
                code: Code::ConfigureAck,
                id: 77,
                ..
            }
        ));
        assert_eq!(pair.a.fsm.state(), State::AckSent);
        assert!(pair.a.fsm.poll_timeout().is_some());
    }

    fn drain(fsm: &mut Fsm) -> Vec<Output> {
        std::iter::from_fn(|| fsm.poll_output()).collect()
    }

    /// Acknowledge the automaton's outstanding Configure-Request.
    fn ack_our_request(fsm: &mut Fsm, neg: &mut TestNeg, now: Instant) {
        let request = fsm.work.as_ref().unwrap().request.clone().unwrap();
        fsm.receive(now, Code::ConfigureAck, request.id, &request.data, neg);
    }

    /// An automaton brought into `state` through the public API, output
    /// drained. It asks for `[1, 5]` and acks everything.
    fn fixture(state: State, now: Instant) -> (Fsm, TestNeg) {
        let (mut fsm, neg) = match state {
            State::Initial => (Fsm::new(FsmConfig::default()), TestNeg::wanting(&[[1, 5]])),
            State::Starting => {
                let (mut fsm, mut neg) = fixture(State::Initial, now);
                fsm.open(now, &mut neg);
                (fsm, neg)
            }
            State::Closed => {
                let (mut fsm, mut neg) = fixture(State::Initial, now);
                fsm.up(now, &mut neg);
                (fsm, neg)
            }
            State::ReqSent => {
                let (mut fsm, mut neg) = fixture(State::Starting, now);
                fsm.up(now, &mut neg);
                (fsm, neg)
            }
            State::Stopped => {
                let (mut fsm, neg) = fixture(State::ReqSent, now);
                fsm.receive_reject(now, true);
                (fsm, neg)
            }
            State::Closing => {
                let (mut fsm, neg) = fixture(State::ReqSent, now);
                fsm.close(now, Vec::new());
                (fsm, neg)
            }
            State::AckRcvd => {
                let (mut fsm, mut neg) = fixture(State::ReqSent, now);
                ack_our_request(&mut fsm, &mut neg, now);
                (fsm, neg)
            }
            State::AckSent => {
                let (mut fsm, mut neg) = fixture(State::ReqSent, now);
                fsm.receive(now, Code::ConfigureRequest, 50, &[1, 5], &mut neg);
                (fsm, neg)
            }
            State::Opened => {
                let (mut fsm, mut neg) = fixture(State::AckSent, now);
                ack_our_request(&mut fsm, &mut neg, now);
                (fsm, neg)
            }
            State::Stopping => {
                let (mut fsm, mut neg) = fixture(State::Opened, now);
                fsm.receive(now, Code::TerminateRequest, 51, &[], &mut neg);
                (fsm, neg)
            }
        };
        drain(&mut fsm);
        assert_eq!(fsm.state(), state, "fixture");
        (fsm, neg)
    }

    // ---------------------------------------------------------------------
    // Scenarios between two automata.
    // ---------------------------------------------------------------------

    #[test]
    fn both_ends_open_and_signal_layer_up_once() {
        let mut pair = Pair::opened(TestNeg::wanting(&[[1, 5]]), TestNeg::wanting(&[[2, 9]]));
        for side in [&pair.a, &pair.b] {
            assert_eq!(side.signals(), [Output::LayerStarted, Output::LayerUp]);
            assert_eq!(
                side.sent_codes(),
                [Code::ConfigureRequest, Code::ConfigureAck]
            );
            assert_eq!(side.fsm.poll_timeout(), None, "no timer in Opened");
        }
        assert_eq!(pair.a.neg.acked.as_deref(), Some(&[1, 5][..]));
        assert_eq!(pair.b.neg.acked.as_deref(), Some(&[2, 9][..]));
        // Nothing happens afterwards: no timer, no retransmission.
        let end = pair.t0 + 60 * SEC;
        pair.run_until(end);
        assert_eq!(pair.a.sent.len(), 2);
        assert_eq!(pair.a.count(&Output::LayerUp), 1);
        assert_eq!(pair.b.count(&Output::LayerUp), 1);
    }

    #[test]
    fn nak_once_then_ack() {
        let mut lns = TestNeg::wanting(&[[2, 9]]);
        lns.insist = Some([1, 6]);
        let pair = Pair::opened(TestNeg::wanting(&[[1, 5]]), lns);
        let requests: Vec<_> = pair
            .a
            .sent
            .iter()
            .filter(|s| s.1 == Code::ConfigureRequest)
            .collect();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].3, [1, 5]);
        assert_eq!(requests[1].3, [1, 6], "the Nak's value adopted");
        assert_ne!(requests[0].2, requests[1].2, "new options, new Identifier");
        let nak = pair
            .b
            .sent
            .iter()
            .find(|s| s.1 == Code::ConfigureNak)
            .unwrap();
        assert_eq!((nak.2, nak.3.as_slice()), (requests[0].2, &[1, 6][..]));
        assert_eq!(pair.a.fsm.stats().naks_received, 1);
        assert_eq!(pair.b.fsm.stats().naks_sent, 1);
        assert_eq!(pair.a.neg.acked.as_deref(), Some(&[1, 6][..]));
        assert_eq!(pair.a.count(&Output::LayerUp), 1);
        assert_eq!(pair.b.count(&Output::LayerUp), 1);
    }

    #[test]
    fn rejected_option_is_dropped_and_negotiation_converges() {
        let mut lns = TestNeg::wanting(&[[2, 9]]);
        lns.reject_type = Some(3);
        let pair = Pair::opened(TestNeg::wanting(&[[1, 5], [3, 7]]), lns);
        let reject = pair
            .b
            .sent
            .iter()
            .find(|s| s.1 == Code::ConfigureReject)
            .unwrap();
        assert_eq!(reject.3, [3, 7]);
        assert_eq!(pair.a.neg.acked.as_deref(), Some(&[1, 5][..]));
        assert_eq!(pair.a.fsm.stats().rejects_received, 1);
        assert_eq!(pair.b.fsm.stats().rejects_sent, 1);
    }

    #[test]
    fn reject_of_an_option_we_need_is_discarded_until_max_configure() {
        let mut lac = TestNeg::wanting(&[[1, 5], [3, 7]]);
        lac.required = Some(3);
        let mut lns = TestNeg::wanting(&[[2, 9]]);
        lns.reject_type = Some(3);
        let mut pair = Pair::new(lac, lns);
        pair.open_both();
        let end = pair.t0 + 60 * SEC;
        pair.run_until(end);
        // Every Reject is discarded; our request is retransmitted (one
        // Identifier) until TO- at 30 s finishes the layer.
        let t0 = pair.t0;
        let before: Vec<_> = pair
            .a
            .sent
            .iter()
            .filter(|s| s.1 == Code::ConfigureRequest && s.0 < t0 + 30 * SEC)
            .collect();
        assert_eq!(before.len(), 10);
        assert!(before.iter().all(|s| s.2 == before[0].2));
        let finished = pair.a.layer.iter().find(|l| l.1 == Output::LayerFinished);
        assert_eq!(finished.map(|l| l.0), Some(t0 + 30 * SEC));
        assert!(pair.a.fsm.stats().discarded >= 10);
        assert_eq!(pair.a.count(&Output::LayerUp), 0);
        // Stopped is no dead end: the peer's next Configure-Request restarts
        // the negotiation (irc, scr, sca/8), and the same thing happens
        // again. A protocol that cannot do without an option ends this with
        // `close` when `on_reject` says so.
        assert!(pair.a.count(&Output::LayerFinished) >= 2);
        pair.a.fsm.close(pair.now, Vec::new());
        let end = pair.now + 60 * SEC;
        pair.run_until(end);
        assert_eq!(pair.a.fsm.state(), State::Closed);
        assert_eq!(pair.a.fsm.poll_timeout(), None);
    }

    #[test]
    fn close_terminates_both_ends() {
        let mut pair = Pair::opened(TestNeg::wanting(&[[1, 5]]), TestNeg::wanting(&[[2, 9]]));
        let closed_at = pair.t0 + 10 * SEC;
        pair.now = closed_at;
        pair.a.fsm.close(closed_at, b"bye".to_vec());
        pair.settle();

        let request = pair.a.sent.last().unwrap().clone();
        assert_eq!(
            (request.1, request.3.as_slice()),
            (Code::TerminateRequest, &b"bye"[..])
        );
        let ack = pair.b.sent.last().unwrap().clone();
        assert_eq!(
            (ack.1, ack.2),
            (Code::TerminateAck, request.2),
            "ack echoes the id"
        );

        // Closer: tld, irc, str -> Closing; RTA -> tlf/2.
        assert_eq!(pair.a.fsm.state(), State::Closed);
        assert_eq!(
            pair.a.signals()[2..],
            [Output::LayerDown, Output::LayerFinished]
        );
        // Peer: RTR in Opened -> tld, zrc, sta/5; TO- after one Restart
        // period -> tlf/3.
        assert_eq!(pair.b.fsm.state(), State::Stopping);
        assert_eq!(pair.b.fsm.poll_timeout(), Some(closed_at + 3 * SEC));
        let end = closed_at + 10 * SEC;
        pair.run_until(end);
        assert_eq!(pair.b.fsm.state(), State::Stopped);
        assert_eq!(
            pair.b.layer[2..],
            [
                (closed_at, Output::LayerDown),
                (closed_at + 3 * SEC, Output::LayerFinished)
            ]
        );
        // The closer sent exactly one Terminate-Request.
        assert_eq!(pair.a.fsm.stats().terminate_requests, 1);
    }

    #[test]
    fn terminate_from_peer_while_opened() {
        let (mut fsm, mut neg) = fixture(State::Opened, Instant::now());
        let now = Instant::now() + 5 * SEC;
        fsm.receive(now, Code::TerminateRequest, 0x42, b"admin", &mut neg);
        // RTR in Opened: tld, zrc, sta/5.
        assert_eq!(
            drain(&mut fsm),
            [
                Output::LayerDown,
                Output::Send {
                    code: Code::TerminateAck,
                    id: 0x42,
                    data: Vec::new()
                }
            ]
        );
        assert_eq!(fsm.state(), State::Stopping);
        assert_eq!(fsm.restart_counter, 0, "zrc");
        assert_eq!(fsm.poll_timeout(), Some(now + 3 * SEC));
        // A retransmitted Terminate-Request is acked again (sta/5).
        fsm.receive(now + SEC, Code::TerminateRequest, 0x42, b"admin", &mut neg);
        assert_eq!(drain(&mut fsm).len(), 1);
        // Not yet due.
        fsm.handle_timeout(now + 2 * SEC, &mut neg);
        assert_eq!(fsm.state(), State::Stopping);
        // TO- (counter zero): tlf/3.
        fsm.handle_timeout(now + 3 * SEC, &mut neg);
        assert_eq!(drain(&mut fsm), [Output::LayerFinished]);
        assert_eq!(fsm.state(), State::Stopped);
        assert_eq!(fsm.poll_timeout(), None);
    }

    #[test]
    fn silent_peer_max_configure_timeouts_then_finished() {
        let t0 = Instant::now();
        let mut neg = TestNeg::wanting(&[[1, 5]]);
        let mut fsm = Fsm::new(FsmConfig::default());
        fsm.open(t0, &mut neg);
        fsm.up(t0, &mut neg);
        let mut requests = Vec::new();
        let mut finished = Vec::new();
        let mut now = t0;
        loop {
            for out in drain(&mut fsm) {
                match out {
                    Output::Send { code, id, .. } => {
                        assert_eq!(code, Code::ConfigureRequest);
                        requests.push((now - t0, id));
                    }
                    Output::LayerFinished => finished.push(now - t0),
                    Output::LayerStarted => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            let Some(at) = fsm.poll_timeout() else { break };
            now = at;
            fsm.handle_timeout(now, &mut neg);
        }
        // Max-Configure = 10 transmissions, 3 s apart, all with one Identifier.
        let times: Vec<_> = requests.iter().map(|r| r.0).collect();
        let expected: Vec<_> = (0..10).map(|i| i * 3 * SEC).collect();
        assert_eq!(times, expected);
        assert!(requests.iter().all(|r| r.1 == requests[0].1));
        // The tenth expiry finds the counter at zero: TO-, tlf/3p.
        assert_eq!(finished, [30 * SEC]);
        assert_eq!(fsm.state(), State::Stopped);
        let stats = fsm.stats();
        assert_eq!((stats.timeouts, stats.retransmissions), (10, 9));
    }

    #[test]
    fn silent_peer_max_terminate() {
        let t0 = Instant::now();
        let (mut fsm, mut neg) = fixture(State::ReqSent, t0);
        fsm.close(t0, Vec::new());
        let mut requests = Vec::new();
        let mut finished = None;
        let mut now = t0;
        loop {
            for out in drain(&mut fsm) {
                match out {
                    Output::Send { code, id, .. } => {
                        assert_eq!(code, Code::TerminateRequest);
                        requests.push((now - t0, id));
                    }
                    Output::LayerFinished => finished = Some(now - t0),
                    other => panic!("unexpected {other:?}"),
                }
            }
            let Some(at) = fsm.poll_timeout() else { break };
            now = at;
            fsm.handle_timeout(now, &mut neg);
        }
        assert_eq!(requests.len(), 2, "Max-Terminate = 2");
        assert_eq!((requests[0].0, requests[1].0), (Duration::ZERO, 3 * SEC));
        assert_eq!(requests[0].1, requests[1].1, "retransmission keeps the id");
        assert_eq!(finished, Some(6 * SEC));
        assert_eq!(fsm.state(), State::Closed);
    }

    #[test]
    fn counters_and_timer_are_configurable() {
        let t0 = Instant::now();
        let mut neg = TestNeg::wanting(&[[1, 5]]);
        let mut fsm = Fsm::new(FsmConfig {
            restart: SEC,
            max_configure: 3,
            ..FsmConfig::default()
        });
        fsm.open(t0, &mut neg);
        fsm.up(t0, &mut neg);
        let mut now = t0;
        while let Some(at) = fsm.poll_timeout() {
            now = at;
            fsm.handle_timeout(now, &mut neg);
        }
        assert_eq!(now - t0, 3 * SEC);
        assert_eq!(fsm.stats().configure_requests, 3);
        assert_eq!(fsm.state(), State::Stopped);
    }

    #[test]
    fn nak_loop_turns_into_reject_after_max_failure() {
        // The LAC never adopts the suggested value; the LNS insists.
        let mut lac = TestNeg::wanting(&[[1, 5], [3, 1]]);
        lac.accept_naks = false;
        let mut lns = TestNeg::wanting(&[[2, 9]]);
        lns.insist = Some([1, 6]);
        let pair = Pair::opened(lac, lns);

        // Max-Failure = 5 Naks; the sixth answer is a Reject.
        let replies: Vec<Code> = pair
            .b
            .sent
            .iter()
            .map(|s| s.1)
            .filter(|c| matches!(c, Code::ConfigureNak | Code::ConfigureReject))
            .collect();
        let mut expected = vec![Code::ConfigureNak; 5];
        expected.push(Code::ConfigureReject);
        assert_eq!(replies, expected);
        assert_eq!(
            pair.b.neg.reject_flags[..6],
            [false, false, false, false, false, true]
        );
        let reject = pair
            .b
            .sent
            .iter()
            .find(|s| s.1 == Code::ConfigureReject)
            .unwrap();
        assert_eq!(reject.3, [1, 5]);
        assert_eq!(pair.a.neg.acked.as_deref(), Some(&[3, 1][..]));
        assert_eq!(pair.b.fsm.stats().naks_sent, 5);
        // Sending the Ack resets the failure count.
        assert_eq!(pair.b.fsm.naks_since_ack, 0);
    }

    #[test]
    fn renegotiation_from_opened() {
        let mut pair = Pair::opened(TestNeg::wanting(&[[1, 5]]), TestNeg::wanting(&[[2, 9]]));
        let now = pair.now;
        let resets_before = pair.b.neg.resets;
        // The LAC restarts its layer (Down then Up: the restart option).
        pair.a.fsm.down(now);
        pair.a.fsm.up(now, &mut pair.a.neg);
        let request = match drain(&mut pair.a.fsm).as_slice() {
            [Output::LayerDown, Output::Send { code, id, data }] => {
                assert_eq!(*code, Code::ConfigureRequest);
                (*id, data.clone())
            }
            other => panic!("unexpected {other:?}"),
        };
        // RCR+ in Opened: tld, scr, sca/8.
        pair.b.fsm.receive(
            now,
            Code::ConfigureRequest,
            request.0,
            &request.1,
            &mut pair.b.neg,
        );
        let out = drain(&mut pair.b.fsm);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], Output::LayerDown);
        assert!(
            matches!(&out[1], Output::Send { code: Code::ConfigureRequest, data, .. } if data == &[2, 9])
        );
        assert_eq!(
            out[2],
            Output::Send {
                code: Code::ConfigureAck,
                id: request.0,
                data: request.1.clone()
            }
        );
        assert_eq!(pair.b.fsm.state(), State::AckSent);
        assert_eq!(pair.b.neg.resets, resets_before + 1, "new negotiation");
        // Deliver those and let them finish.
        for o in out {
            if let Output::Send { code, id, data } = o {
                pair.a.fsm.receive(now, code, id, &data, &mut pair.a.neg);
            }
        }
        pair.settle();
        assert_eq!(pair.a.fsm.state(), State::Opened);
        assert_eq!(pair.b.fsm.state(), State::Opened);
    }

    #[test]
    fn renegotiation_with_a_nak() {
        let mut lns = TestNeg::wanting(&[[2, 9]]);
        lns.insist = Some([1, 6]);
        let mut pair = Pair::opened(TestNeg::wanting(&[[1, 5]]), lns);
        let now = pair.now;
        // reset() makes the LAC ask for [1, 5] again.
        pair.a.fsm.down(now);
        pair.a.fsm.up(now, &mut pair.a.neg);
        let out = drain(&mut pair.a.fsm);
        let Some(Output::Send { id, data, .. }) = out.last() else {
            panic!("no request")
        };
        assert_eq!(data, &[1, 5]);
        // RCR- in Opened: tld, scr, scn/6.
        pair.b
            .fsm
            .receive(now, Code::ConfigureRequest, *id, data, &mut pair.b.neg);
        let out = drain(&mut pair.b.fsm);
        assert_eq!(out[0], Output::LayerDown);
        assert!(matches!(
            out[1],
            Output::Send {
                code: Code::ConfigureRequest,
                ..
            }
        ));
        assert_eq!(
            out[2],
            Output::Send {
                code: Code::ConfigureNak,
                id: *id,
                data: vec![1, 6]
            }
        );
        assert_eq!(pair.b.fsm.state(), State::ReqSent);
    }

    #[test]
    fn unknown_code_draws_a_code_reject() {
        for state in [State::Closed, State::ReqSent, State::Opened] {
            let now = Instant::now();
            let (mut fsm, mut neg) = fixture(state, now);
            fsm.receive(now, Code::Unknown(42), 9, &[1, 2, 3], &mut neg);
            let out = drain(&mut fsm);
            let [Output::Send { code, id, data }] = out.as_slice() else {
                panic!("{state:?}: {out:?}")
            };
            assert_eq!(*code, Code::CodeReject);
            assert_eq!(
                data,
                &[42, 9, 0, 7, 1, 2, 3],
                "the rejected packet, header included"
            );
            assert_ne!(*id, 9);
            assert_eq!(fsm.state(), state, "scj leaves the state alone");
            assert_eq!(fsm.stats().code_rejects, 1);
        }
        // Codes given as Unknown but known are not rejected.
        let now = Instant::now();
        let (mut fsm, mut neg) = fixture(State::Opened, now);
        fsm.receive(now, Code::Unknown(5), 3, &[], &mut neg);
        assert_eq!(
            fsm.state(),
            State::Stopping,
            "Unknown(5) is a Terminate-Request"
        );
    }

    #[test]
    fn code_reject_judged_by_the_rejected_code() {
        let now = Instant::now();
        let (mut fsm, mut neg) = fixture(State::Opened, now);
        // A rejected extension Code (an LCP Echo-Request): RXJ+, stay Opened.
        fsm.receive(
            now,
            Code::CodeReject,
            1,
            &[9, 1, 0, 8, 0, 0, 0, 0],
            &mut neg,
        );
        assert_eq!(fsm.state(), State::Opened);
        assert!(drain(&mut fsm).is_empty());
        // An empty Code-Reject is malformed: discarded.
        fsm.receive(now, Code::CodeReject, 2, &[], &mut neg);
        assert_eq!(fsm.state(), State::Opened);
        assert_eq!(fsm.stats().discarded, 1);
        // A rejected Configure-Request: RXJ-, tld, irc, str/5.
        fsm.receive(now, Code::CodeReject, 3, &[1, 7, 0, 4], &mut neg);
        let out = drain(&mut fsm);
        assert_eq!(out[0], Output::LayerDown);
        assert!(matches!(
            out[1],
            Output::Send {
                code: Code::TerminateRequest,
                ..
            }
        ));
        assert_eq!(fsm.state(), State::Stopping);
        assert_eq!(fsm.restart_counter, 1, "irc to Max-Terminate, one str sent");
    }

    #[test]
    fn stale_and_mismatched_identifiers_are_ignored() {
        let now = Instant::now();
        let (mut fsm, mut neg) = fixture(State::ReqSent, now);
        let request = fsm.work.as_ref().unwrap().request.clone().unwrap();
        let wrong = request.id.wrapping_add(1);
        fsm.receive(now, Code::ConfigureAck, wrong, &request.data, &mut neg);
        fsm.receive(now, Code::ConfigureAck, request.id, &[1, 6], &mut neg);
        fsm.receive(now, Code::ConfigureNak, wrong, &[1, 6], &mut neg);
        fsm.receive(now, Code::ConfigureReject, wrong, &[1, 5], &mut neg);
        fsm.receive(now, Code::ConfigureNak, request.id, &[1], &mut neg);
        assert_eq!(fsm.state(), State::ReqSent);
        assert!(drain(&mut fsm).is_empty());
        assert_eq!(fsm.stats().discarded, 5);
        assert_eq!(neg.acked, None);
        assert_eq!(neg.want, [[1, 5]], "no Nak applied");

        // The right one counts.
        fsm.receive(now, Code::ConfigureAck, request.id, &request.data, &mut neg);
        assert_eq!(fsm.state(), State::AckRcvd);
        // A duplicate of it (the peer answering a retransmission) is stale,
        // not the "crossed connection" of RCA in Ack-Rcvd.
        fsm.receive(now, Code::ConfigureAck, request.id, &request.data, &mut neg);
        fsm.receive(now, Code::ConfigureNak, request.id, &[1, 6], &mut neg);
        assert_eq!(fsm.state(), State::AckRcvd);
        assert!(drain(&mut fsm).is_empty());
        assert_eq!(fsm.stats().discarded, 7);

        // In Opened every reply is stale: our request has been answered.
        let (mut fsm, mut neg) = fixture(State::Opened, now);
        let request = fsm.work.as_ref().unwrap().request.clone().unwrap();
        fsm.receive(now, Code::ConfigureAck, request.id, &request.data, &mut neg);
        fsm.receive(
            now,
            Code::ConfigureReject,
            request.id,
            &request.data,
            &mut neg,
        );
        assert_eq!(fsm.state(), State::Opened);
        assert!(drain(&mut fsm).is_empty());
    }

    #[test]
    fn reply_to_a_retransmitted_request_counts() {
        let t0 = Instant::now();
        let (mut fsm, mut neg) = fixture(State::ReqSent, t0);
        let first = fsm.work.as_ref().unwrap().request.clone().unwrap();
        fsm.handle_timeout(t0 + 3 * SEC, &mut neg);
        let out = drain(&mut fsm);
        assert_eq!(
            out,
            [Output::Send {
                code: Code::ConfigureRequest,
                id: first.id,
                data: first.data.clone()
            }]
        );
        // The late Ack of the first copy is still valid.
        fsm.receive(
            t0 + 4 * SEC,
            Code::ConfigureAck,
            first.id,
            &first.data,
            &mut neg,
        );
        assert_eq!(fsm.state(), State::AckRcvd);
        // TO+ in Ack-Rcvd: the answered request is not retransmitted; a new
        // one (new Identifier) is sent.
        fsm.handle_timeout(t0 + 6 * SEC, &mut neg);
        let out = drain(&mut fsm);
        let [Output::Send {
            code: Code::ConfigureRequest,
            id,
            ..
        }] = out.as_slice()
        else {
            panic!("{out:?}")
        };
        assert_ne!(*id, first.id);
        assert_eq!(fsm.state(), State::ReqSent);
    }

    #[test]
    fn terminate_ack_in_closed_and_stopped_and_not_in_response_to_terminate_ack() {
        let now = Instant::now();
        for state in [State::Closed, State::Stopped] {
            let (mut fsm, mut neg) = fixture(state, now);
            // §4.2: other packets draw a Terminate-Ack ...
            fsm.receive(now, Code::ConfigureAck, 7, &[1, 5], &mut neg);
            assert_eq!(
                drain(&mut fsm),
                [Output::Send {
                    code: Code::TerminateAck,
                    id: 7,
                    data: Vec::new()
                }]
            );
            // ... but "Terminate-Acks are silently discarded to avoid
            // creating a loop".
            fsm.receive(now, Code::TerminateAck, 8, &[], &mut neg);
            assert!(drain(&mut fsm).is_empty());
            assert_eq!(fsm.state(), state);
        }
        // Closed answers a Configure-Request with a Terminate-Ack; Stopped
        // negotiates (irc, scr, sca/8).
        let (mut fsm, mut neg) = fixture(State::Closed, now);
        fsm.receive(now, Code::ConfigureRequest, 9, &[2, 2], &mut neg);
        assert!(matches!(
            drain(&mut fsm)[..],
            [Output::Send {
                code: Code::TerminateAck,
                id: 9,
                ..
            }]
        ));
        let (mut fsm, mut neg) = fixture(State::Stopped, now);
        fsm.receive(now, Code::ConfigureRequest, 9, &[2, 2], &mut neg);
        let out = drain(&mut fsm);
        assert!(matches!(
            out[0],
            Output::Send {
                code: Code::ConfigureRequest,
                ..
            }
        ));
        assert!(matches!(
            out[1],
            Output::Send {
                code: Code::ConfigureAck,
                id: 9,
                ..
            }
        ));
        assert_eq!(fsm.state(), State::AckSent);
    }

    #[test]
    fn packets_while_the_lower_layer_is_down_are_ignored() {
        let now = Instant::now();
        for state in [State::Initial, State::Starting] {
            let (mut fsm, mut neg) = fixture(state, now);
            for code in 1..=8u8 {
                fsm.receive(now, Code::from(code), 1, &[1, 5], &mut neg);
            }
            assert!(!fsm.receive_rxr(now));
            fsm.receive_reject(now, true);
            assert_eq!(fsm.state(), state);
            assert!(drain(&mut fsm).is_empty());
            assert_eq!(fsm.stats().illegal_events, 10);
        }
    }

    #[test]
    fn echo_is_answered_only_when_opened() {
        let now = Instant::now();
        for state in State::ALL {
            let (mut fsm, _) = fixture(state, now);
            assert_eq!(fsm.receive_rxr(now), state == State::Opened, "{state:?}");
            assert_eq!(fsm.state(), state);
            assert!(drain(&mut fsm).is_empty());
        }
    }

    #[test]
    fn passive_option_waits_without_finishing() {
        let t0 = Instant::now();
        let mut neg = TestNeg::wanting(&[[1, 5]]);
        let mut fsm = Fsm::new(FsmConfig {
            passive: true,
            ..FsmConfig::default()
        });
        fsm.open(t0, &mut neg);
        fsm.up(t0, &mut neg);
        while let Some(at) = fsm.poll_timeout() {
            fsm.handle_timeout(at, &mut neg);
        }
        assert_eq!(fsm.state(), State::Stopped);
        let out = drain(&mut fsm);
        assert!(!out.contains(&Output::LayerFinished));
        // The peer finally speaks: irc, scr, sca/8.
        fsm.receive(t0 + 60 * SEC, Code::ConfigureRequest, 1, &[], &mut neg);
        assert_eq!(fsm.state(), State::AckSent);
    }

    #[test]
    fn down_in_every_state_goes_where_the_table_says() {
        use State::*;
        // Down | - | - | 0 | tls/1 | 0 | 1 | 1 | 1 | 1 | tld/1
        let expected: [(State, State, &[Output]); 10] = [
            (Initial, Initial, &[]),
            (Starting, Starting, &[]),
            (Closed, Initial, &[]),
            (Stopped, Starting, &[Output::LayerStarted]),
            (Closing, Initial, &[]),
            (Stopping, Starting, &[]),
            (ReqSent, Starting, &[]),
            (AckRcvd, Starting, &[]),
            (AckSent, Starting, &[]),
            (Opened, Starting, &[Output::LayerDown]),
        ];
        let now = Instant::now();
        for (from, to, outputs) in expected {
            let (mut fsm, _) = fixture(from, now);
            fsm.down(now + SEC);
            assert_eq!(fsm.state(), to, "Down in {from:?}");
            assert_eq!(drain(&mut fsm), outputs, "Down in {from:?}");
            assert_eq!(fsm.poll_timeout(), None, "no timer after Down in {from:?}");
        }
    }

    // ---------------------------------------------------------------------
    // The §4.1 table, cell by cell.
    // ---------------------------------------------------------------------

    /// RFC 1661 §4.1, transcribed row by row: states 0..9 across (Initial,
    /// Starting, Closed, Stopped, Closing, Stopping, Req-Sent, Ack-Rcvd,
    /// Ack-Sent, Opened), "action,action/new-state", '-' illegal.
    #[rustfmt::skip]
    const RFC_TABLE: [(&str, [&str; 10]); 16] = [
        //        Initial  Starting     Closed       Stopped          Closing  Stopping Req-Sent     Ack-Rcvd     Ack-Sent     Opened
        ("Up",   ["2",     "irc,scr/6", "-",         "-",             "-",     "-",     "-",         "-",         "-",         "-"]),
        ("Down", ["-",     "-",         "0",         "tls/1",         "0",     "1",     "1",         "1",         "1",         "tld/1"]),
        ("Open", ["tls/1", "1",         "irc,scr/6", "3r",            "5r",    "5r",    "6",         "7",         "8",         "9r"]),
        ("Close",["0",     "tlf/0",     "2",         "2",             "4",     "4",     "irc,str/4", "irc,str/4", "irc,str/4", "tld,irc,str/4"]),
        ("TO+",  ["-",     "-",         "-",         "-",             "str/4", "str/5", "scr/6",     "scr/6",     "scr/8",     "-"]),
        ("TO-",  ["-",     "-",         "-",         "-",             "tlf/2", "tlf/3", "tlf/3p",    "tlf/3p",    "tlf/3p",    "-"]),
        ("RCR+", ["-",     "-",         "sta/2",     "irc,scr,sca/8", "4",     "5",     "sca/8",     "sca,tlu/9", "sca/8",     "tld,scr,sca/8"]),
        ("RCR-", ["-",     "-",         "sta/2",     "irc,scr,scn/6", "4",     "5",     "scn/6",     "scn/7",     "scn/6",     "tld,scr,scn/6"]),
        ("RCA",  ["-",     "-",         "sta/2",     "sta/3",         "4",     "5",     "irc/7",     "scr/6x",    "irc,tlu/9", "tld,scr/6x"]),
        ("RCN",  ["-",     "-",         "sta/2",     "sta/3",         "4",     "5",     "irc,scr/6", "scr/6x",    "irc,scr/8", "tld,scr/6x"]),
        ("RTR",  ["-",     "-",         "sta/2",     "sta/3",         "sta/4", "sta/5", "sta/6",     "sta/6",     "sta/6",     "tld,zrc,sta/5"]),
        ("RTA",  ["-",     "-",         "2",         "3",             "tlf/2", "tlf/3", "6",         "6",         "8",         "tld,scr/6"]),
        ("RUC",  ["-",     "-",         "scj/2",     "scj/3",         "scj/4", "scj/5", "scj/6",     "scj/7",     "scj/8",     "scj/9"]),
        ("RXJ+", ["-",     "-",         "2",         "3",             "4",     "5",     "6",         "6",         "8",         "9"]),
        ("RXJ-", ["-",     "-",         "tlf/2",     "tlf/3",         "tlf/2", "tlf/3", "tlf/3",     "tlf/3",     "tlf/3",     "tld,irc,str/5"]),
        ("RXR",  ["-",     "-",         "2",         "3",             "4",     "5",     "6",         "7",         "8",         "ser/9"]),
    ];

    /// The RFC's state numbers, mapped here rather than taken from the
    /// implementation.
    fn rfc_state(number: usize) -> State {
        match number {
            0 => State::Initial,
            1 => State::Starting,
            2 => State::Closed,
            3 => State::Stopped,
            4 => State::Closing,
            5 => State::Stopping,
            6 => State::ReqSent,
            7 => State::AckRcvd,
            8 => State::AckSent,
            9 => State::Opened,
            other => panic!("no state {other}"),
        }
    }

    fn rfc_event(name: &str) -> Event {
        match name {
            "Up" => Event::Up,
            "Down" => Event::Down,
            "Open" => Event::Open,
            "Close" => Event::Close,
            "TO+" => Event::ToPlus,
            "TO-" => Event::ToMinus,
            "RCR+" => Event::RcrPlus,
            "RCR-" => Event::RcrMinus,
            "RCA" => Event::Rca,
            "RCN" => Event::Rcn,
            "RTR" => Event::Rtr,
            "RTA" => Event::Rta,
            "RUC" => Event::Ruc,
            "RXJ+" => Event::RxjPlus,
            "RXJ-" => Event::RxjMinus,
            "RXR" => Event::Rxr,
            other => panic!("no event {other}"),
        }
    }

    fn rfc_action(name: &str) -> Action {
        match name {
            "tlu" => Action::Tlu,
            "tld" => Action::Tld,
            "tls" => Action::Tls,
            "tlf" => Action::Tlf,
            "irc" => Action::Irc,
            "zrc" => Action::Zrc,
            "scr" => Action::Scr,
            "sca" => Action::Sca,
            "scn" => Action::Scn,
            "str" => Action::Str,
            "sta" => Action::Sta,
            "scj" => Action::Scj,
            "ser" => Action::Ser,
            other => panic!("no action {other}"),
        }
    }

    /// A parsed cell: the actions and the new state; `None` for '-'.
    type Cell = Option<(Vec<Action>, State)>;

    /// A cell as (actions, new state); `None` for '-'. Footnote letters
    /// (r, p, x) after the state number are dropped.
    fn parse_cell(cell: &str) -> Cell {
        if cell == "-" {
            return None;
        }
        let (actions, next) = match cell.rsplit_once('/') {
            Some((actions, next)) => (actions.split(',').map(rfc_action).collect(), next),
            None => (Vec::new(), cell),
        };
        let digits: String = next.chars().take_while(char::is_ascii_digit).collect();
        Some((actions, rfc_state(digits.parse().unwrap())))
    }

    /// Every cell of the RFC table, as `(state, event, expected)`.
    fn rfc_cells() -> Vec<(State, Event, Cell)> {
        let mut cells = Vec::new();
        for (event, row) in RFC_TABLE {
            for (column, cell) in row.iter().enumerate() {
                cells.push((rfc_state(column), rfc_event(event), parse_cell(cell)));
            }
        }
        cells
    }

    #[test]
    fn transition_function_matches_every_cell_of_the_rfc_table() {
        let cells = rfc_cells();
        assert_eq!(cells.len(), 160);
        for (state, event, expected) in cells {
            let actual = transition(state, event).map(|t| (t.actions.to_vec(), t.next));
            assert_eq!(actual, expected, "{event} in {state:?}");
        }
    }

    /// What the caller sees for one table action, given the packet injected
    /// (Identifier 77, options `[1, 5]`, our Nak `[1, 6]`, unknown Code 42).
    fn expected_output(action: Action) -> Option<Output> {
        let send = |code, id, data: &[u8]| {
            Some(Output::Send {
                code,
                id,
                data: data.to_vec(),
            })
        };
        match action {
            Action::Tlu => Some(Output::LayerUp),
            Action::Tld => Some(Output::LayerDown),
            Action::Tls => Some(Output::LayerStarted),
            Action::Tlf => Some(Output::LayerFinished),
            Action::Irc | Action::Zrc | Action::Ser => None,
            // Our own Identifiers are normalised to 0 before comparing.
            Action::Scr => send(Code::ConfigureRequest, 0, &[1, 5]),
            Action::Str => send(Code::TerminateRequest, 0, &[]),
            Action::Scj => send(Code::CodeReject, 0, &[42, 77, 0, 6, 1, 5]),
            Action::Sca => send(Code::ConfigureAck, 77, &[1, 5]),
            Action::Scn => send(Code::ConfigureNak, 77, &[1, 6]),
            Action::Sta => send(Code::TerminateAck, 77, &[]),
        }
    }

    #[test]
    fn every_cell_through_the_automaton() {
        let t0 = Instant::now();
        let now = t0 + SEC;
        let config = FsmConfig::default();
        for (state, event, expected) in rfc_cells() {
            let (mut fsm, mut neg) = fixture(state, t0);
            let counter_before = fsm.restart_counter;
            let timer_before = fsm.poll_timeout();
            let inbound = Inbound {
                code: if event == Event::Ruc { 42 } else { 1 },
                id: 77,
                data: &[1, 5],
                reply: (event == Event::RcrMinus).then(|| (Code::ConfigureNak, vec![1, 6])),
            };
            let ser = fsm.dispatch(now, event, &inbound, &mut neg);
            let outputs: Vec<Output> = drain(&mut fsm)
                .into_iter()
                .map(|o| match o {
                    Output::Send { code, data, .. }
                        if matches!(
                            code,
                            Code::ConfigureRequest | Code::TerminateRequest | Code::CodeReject
                        ) =>
                    {
                        Output::Send { code, id: 0, data }
                    }
                    other => other,
                })
                .collect();
            let cell = format!("{event} in {state:?}");

            let Some((actions, next)) = expected else {
                assert_eq!(fsm.state(), state, "{cell}: illegal, state kept");
                assert!(outputs.is_empty(), "{cell}: illegal, no output");
                assert_eq!(fsm.stats().illegal_events, 1, "{cell}");
                continue;
            };
            assert_eq!(fsm.state(), next, "{cell}: next state");
            let wanted: Vec<Output> = actions.iter().filter_map(|&a| expected_output(a)).collect();
            assert_eq!(outputs, wanted, "{cell}: outputs");
            assert_eq!(ser, actions.contains(&Action::Ser), "{cell}: ser");

            // irc / zrc / scr / str on the Restart counter (§4.4).
            let has = |a| actions.contains(&a);
            let counter = if has(Action::Zrc) {
                0
            } else if has(Action::Irc) && has(Action::Str) {
                config.max_terminate - 1
            } else if has(Action::Irc) && has(Action::Scr) {
                config.max_configure - 1
            } else if has(Action::Irc) {
                config.max_configure
            } else if has(Action::Scr) || has(Action::Str) {
                counter_before.saturating_sub(1)
            } else {
                counter_before
            };
            assert_eq!(fsm.restart_counter, counter, "{cell}: restart counter");

            // §4.6: scr, str and zrc (re)start the timer; it stops in the
            // states without TO events.
            let runs = matches!(
                next,
                State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent
            );
            let timer = if !runs {
                None
            } else if has(Action::Scr) || has(Action::Str) || has(Action::Zrc) {
                Some(now + config.restart)
            } else {
                timer_before
            };
            assert_eq!(fsm.poll_timeout(), timer, "{cell}: restart timer");
        }
    }
}

/// A two-ended harness for the protocol tests: two automata joined by an
/// in-memory wire, on a simulated clock that jumps to the next deadline.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Which end of the pair.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Side {
        A,
        B,
    }

    /// One packet put on the wire.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Wire {
        pub from: Side,
        pub code: Code,
        pub id: u8,
        pub data: Vec<u8>,
    }

    /// Two automata, each with its negotiator, talking to each other.
    #[derive(Debug)]
    pub(crate) struct Pair<A, B> {
        pub a: Fsm,
        pub b: Fsm,
        pub na: A,
        pub nb: B,
        pub now: Instant,
        /// Every packet sent so far, in order.
        pub wire: Vec<Wire>,
        /// Layer signals (tlu, tld, tls, tlf) of both ends.
        pub signals: Vec<(Side, Output)>,
        in_flight: VecDeque<Wire>,
    }

    impl<A: Negotiator, B: Negotiator> Pair<A, B> {
        pub(crate) fn new(now: Instant, na: A, nb: B) -> Self {
            Pair {
                a: Fsm::new(FsmConfig::default()),
                b: Fsm::new(FsmConfig::default()),
                na,
                nb,
                now,
                wire: Vec::new(),
                signals: Vec::new(),
                in_flight: VecDeque::new(),
            }
        }

        /// Open both ends and bring their lower layers up.
        pub(crate) fn start(&mut self) {
            self.a.open(self.now, &mut self.na);
            self.b.open(self.now, &mut self.nb);
            self.a.up(self.now, &mut self.na);
            self.b.up(self.now, &mut self.nb);
            self.collect();
        }

        fn collect(&mut self) {
            for (side, fsm) in [(Side::A, &mut self.a), (Side::B, &mut self.b)] {
                while let Some(output) = fsm.poll_output() {
                    match output {
                        Output::Send { code, id, data } => {
                            let wire = Wire {
                                from: side,
                                code,
                                id,
                                data,
                            };
                            self.wire.push(wire.clone());
                            self.in_flight.push_back(wire);
                        }
                        signal => self.signals.push((side, signal)),
                    }
                }
            }
        }

        /// Deliver the oldest packet in flight; false when none is left.
        pub(crate) fn step(&mut self) -> bool {
            let Some(w) = self.in_flight.pop_front() else {
                return false;
            };
            match w.from {
                Side::A => self
                    .b
                    .receive(self.now, w.code, w.id, &w.data, &mut self.nb),
                Side::B => self
                    .a
                    .receive(self.now, w.code, w.id, &w.data, &mut self.na),
            }
            self.collect();
            true
        }

        /// Deliver everything, firing Restart timers when the wire is
        /// quiet, until nothing is in flight and no timer runs.
        pub(crate) fn run(&mut self) {
            for _ in 0..10_000 {
                if self.step() {
                    continue;
                }
                let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                let Some(at) = next else {
                    return;
                };
                self.now = at;
                self.a.handle_timeout(at, &mut self.na);
                self.b.handle_timeout(at, &mut self.nb);
                self.collect();
            }
            panic!("the pair never settled");
        }

        /// Packets of `code` sent by `from`.
        pub(crate) fn sent(&self, from: Side, code: Code) -> Vec<&Wire> {
            self.wire
                .iter()
                .filter(|w| w.from == from && w.code == code)
                .collect()
        }

        /// Both ends Opened.
        pub(crate) fn opened(&self) -> bool {
            self.a.state() == State::Opened && self.b.state() == State::Opened
        }
    }
}
