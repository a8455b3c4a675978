//! Parked connections: idle plain-TCP clients that hold neither a task nor a place in tokio's
//! reactor.
//!
//! tokio spends two 256-byte allocations on every connection however quiet it is: the task
//! cell and the socket's readiness record. For a broker of mostly idle devices that is some
//! 40% of each connection's memory. So the broker's sweeper asks each connection that has
//! received nothing for [`QUIET_MS`] to park. One that has nothing buffered and sent nothing
//! meanwhile ends its task, takes its socket out of tokio's reactor and is kept in the
//! broker's [`ParkingLot`]: one thread waiting on an epoll set of its own. It resumes — a new
//! task, its socket back in tokio's reactor — at the first of:
//! - bytes or a hang-up from the client, which the lot's thread sees;
//! - a wake-up from its session (a message queued; a kick for takeover, keep-alive timeout,
//!   a reload's verdict, shutdown), through the waker it left with the session.
//!
//! Parking costs a few system calls each way, nothing next to a connection quiet for seconds.
//! TLS and WebSocket connections never park (see [`super::Transport`]).

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Wake, Waker};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use parking_lot::Mutex;
use slab::Slab;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::{drive, Connection};
use crate::broker::Broker;
use crate::session::WakeState;

/// How long a connection must have received nothing before the sweeper asks it to park.
///
/// Long enough that a client exchanging messages every second or two keeps its task (no
/// park/resume churn), short enough that a device which only pings at its keep alive spends
/// nearly all of its life parked.
pub const QUIET_MS: u64 = 5_000;

/// The token of the lot's own waker, which stops its thread.
const STOP: Token = Token(usize::MAX);

/// Where a broker's parked connections wait: an epoll set watched by one thread, and the
/// connections by token.
pub struct ParkingLot {
    /// Registers parked sockets with the lot thread's poll.
    registry: mio::Registry,
    /// Interrupts the lot thread's poll when it must stop.
    stop: mio::Waker,
    /// Set when the broker shuts down.
    stopping: AtomicBool,
    /// The parked connections, by the token their socket is registered with.
    parked: Mutex<Slab<Arc<Parked>>>,
    /// Where resumed connections run.
    runtime: Handle,
    /// The broker's connection tasks, which resumed ones join so shutdown waits for them.
    connections: TaskTracker,
    /// The broker's gauge of parked connections.
    gauge: prometheus::IntGauge,
}

/// One parked connection, shared by the lot (by token) and its session's waker slot.
struct Parked {
    /// The lot it is parked in.
    lot: Arc<ParkingLot>,
    /// The token its socket is registered with.
    token: usize,
    /// The connection; taken out by whoever resumes it first.
    connection: Mutex<Option<Box<Connection<std::net::TcpStream>>>>,
}

/// The broker's parking lot, started the first time a connection parks; `None` when it
/// cannot be started (no epoll), in which case connections keep their tasks.
pub type LotSlot = OnceLock<Option<Arc<ParkingLot>>>;

/// Parks `connection` (idle, asked to park, on the broker's runtime). If it cannot leave
/// tokio's reactor the socket is lost and the connection ends as if the client had gone.
pub(super) fn park(connection: Box<Connection<TcpStream>>) {
    let Some(lot) = ParkingLot::of(&connection.broker) else {
        // Never ask again; go on in a task of its own.
        connection.session.keep_alive.set_parkable(false);
        let connections = connection.broker.connections.clone();
        connections.spawn(drive(connection));
        return;
    };
    if let Some(connection) = connection.map_stream("park", TcpStream::into_std) {
        lot.admit(connection);
    }
}

impl ParkingLot {
    /// The parking lot of `broker`, started now if it is the first.
    fn of(broker: &Broker) -> Option<Arc<ParkingLot>> {
        broker
            .parking_lot
            .get_or_init(|| match ParkingLot::start(broker) {
                Ok(lot) => Some(lot),
                Err(error) => {
                    warn!(%error, "idle connections keep their tasks: cannot start the parking lot");
                    None
                }
            })
            .clone()
    }

    /// Starts the lot's thread, and a task that stops it when the broker shuts down.
    fn start(broker: &Broker) -> std::io::Result<Arc<ParkingLot>> {
        let poll = Poll::new()?;
        let lot = Arc::new(ParkingLot {
            registry: poll.registry().try_clone()?,
            stop: mio::Waker::new(poll.registry(), STOP)?,
            stopping: AtomicBool::new(false),
            parked: Mutex::new(Slab::new()),
            runtime: Handle::current(),
            connections: broker.connections.clone(),
            gauge: broker.metrics.connections_parked.clone(),
        });
        let watched = Arc::clone(&lot);
        std::thread::Builder::new()
            .name("tern-parking-lot".into())
            .spawn(move || watched.watch(poll))?;
        let stopped = Arc::clone(&lot);
        let shutdown = broker.shutdown.clone();
        lot.runtime.spawn(async move {
            shutdown.cancelled().await;
            stopped.stopping.store(true, Ordering::Release);
            let _ = stopped.stop.wake();
        });
        Ok(lot)
    }

    /// The lot thread: resumes each connection whose socket has something to say, until the
    /// broker stops (then resumes every connection still parked, so each can close properly).
    fn watch(self: Arc<Self>, mut poll: Poll) {
        let mut events = Events::with_capacity(256);
        loop {
            if let Err(error) = poll.poll(&mut events, None) {
                if error.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                warn!(%error, "the parking lot cannot wait for sockets: resuming its connections");
                break;
            }
            for event in events.iter() {
                if event.token() == STOP {
                    continue;
                }
                let parked = self.parked.lock().get(event.token().0).cloned();
                if let Some(parked) = parked {
                    parked.resume();
                }
            }
            if self.stopping.load(Ordering::Acquire) {
                break;
            }
        }
        let everyone: Vec<Arc<Parked>> =
            self.parked.lock().iter().map(|(_, p)| p.clone()).collect();
        for parked in everyone {
            parked.resume();
        }
    }

    /// Parks `connection`, whose socket is already out of tokio's reactor; resumes it at once
    /// if its session was woken while it was on its way.
    fn admit(self: &Arc<Self>, connection: Box<Connection<std::net::TcpStream>>) {
        let session = connection.session.clone();
        let generation = connection.generation;
        let fd = connection.stream.as_raw_fd();
        let parked = {
            let mut lot = self.parked.lock();
            let entry = lot.vacant_entry();
            let parked = Arc::new(Parked {
                lot: Arc::clone(self),
                token: entry.key(),
                connection: Mutex::new(Some(connection)),
            });
            entry.insert(Arc::clone(&parked));
            parked
        };
        // Whoever resumes the connection waits for it to be fully parked first.
        let hold = parked.connection.lock();
        session.keep_alive.set_parked();
        self.gauge.inc();
        let registered =
            self.registry
                .register(&mut SourceFd(&fd), Token(parked.token), Interest::READABLE);
        let waker = Waker::from(Arc::clone(&parked));
        let woken = session
            .wake
            .poll(generation, &mut Context::from_waker(&waker))
            != WakeState::Waiting;
        drop(hold);
        if let Err(error) = &registered {
            debug!(%error, "cannot watch a parked socket: resuming its connection");
        }
        if registered.is_err() || woken {
            parked.resume();
        }
    }
}

impl Parked {
    /// Gives the connection a task again, unless someone already did.
    fn resume(&self) {
        let Some(connection) = self.connection.lock().take() else {
            return;
        };
        let lot = &self.lot;
        let fd = connection.stream.as_raw_fd();
        // Fails only if registering failed in the first place.
        let _ = lot.registry.deregister(&mut SourceFd(&fd));
        lot.parked.lock().try_remove(self.token);
        lot.gauge.dec();
        connection.session.keep_alive.set_running();
        let resumed = async move {
            if let Some(connection) = connection.map_stream("resume", TcpStream::from_std) {
                drive(connection).await;
            }
        };
        lot.connections.spawn_on(resumed, &lot.runtime);
    }
}

/// A parked connection's session wakes it through this.
impl Wake for Parked {
    fn wake(self: Arc<Self>) {
        self.resume();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.resume();
    }
}
