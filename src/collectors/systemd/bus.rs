//! D-Bus access to systemd's manager (zbus 6): connecting, ListUnits,
//! single-property Gets, and decoding the manager's signals. Raw method
//! calls rather than generated proxies: a proxy with its default property
//! cache does a GetAll and an AddMatch per unit (0.5–1.1 s for 305 units).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use zbus::message::Type as MessageType;
use zbus::{Connection, MatchRule, Message, MessageStream, OwnedObjectPath, OwnedVariant};

pub const DEST: &str = "org.freedesktop.systemd1";
pub const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
pub const MANAGER_IFACE: &str = "org.freedesktop.systemd1.Manager";
pub const UNIT_IFACE: &str = "org.freedesktop.systemd1.Unit";
pub const SERVICE_IFACE: &str = "org.freedesktop.systemd1.Service";
const UNIT_PATH_NAMESPACE: &str = "/org/freedesktop/systemd1/unit";
const PROPERTIES_IFACE: &str = "org.freedesktop.DBus.Properties";

/// Signals queued per stream before the connection stops reading (zbus
/// applies back-pressure rather than dropping): the signal task drains them
/// at once, this only absorbs bursts such as a daemon-reload.
const SIGNAL_QUEUE: usize = 4096;

/// Which bus to reach systemd on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusChoice {
    System,
    User,
    Address(String),
}

impl BusChoice {
    /// `system`, `user`, or a D-Bus address such as `unix:path=/run/user/0/bus`.
    pub fn parse(s: &str) -> BusChoice {
        match s {
            "system" => BusChoice::System,
            "user" | "session" => BusChoice::User,
            other => BusChoice::Address(other.to_string()),
        }
    }
}

/// Why a call failed, from a fixed set (never error text in labels or logs' kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer within the method timeout.
    Timeout,
    /// The connection is gone (bus daemon died or closed it).
    Closed,
    /// Could not connect or authenticate.
    Connect,
    /// systemd is not (or no longer) on the bus.
    NoManager,
    /// The bus refused: too many pending replies or match rules.
    Limits,
    /// An answer that does not decode as expected.
    Decode,
    /// Anything else the bus or systemd returned.
    Other,
}

impl Failure {
    pub fn kind(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Closed => "closed",
            Failure::Connect => "connect",
            Failure::NoManager => "no_manager",
            Failure::Limits => "limits",
            Failure::Decode => "decode",
            Failure::Other => "other",
        }
    }

    /// Whether the connection should be dropped and rebuilt.
    pub fn needs_reconnect(self) -> bool {
        matches!(self, Failure::Closed | Failure::Connect)
    }
}

/// A failed call: the class and the text (for logs only).
#[derive(Debug, Clone)]
pub struct BusError {
    pub failure: Failure,
    pub detail: String,
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.failure.kind(), self.detail)
    }
}

fn classify(e: &zbus::Error) -> Failure {
    use zbus::fdo::Error as F;
    match e {
        zbus::Error::InputOutput(io) | zbus::Error::Connection(io, _) => {
            if io.kind() == std::io::ErrorKind::TimedOut {
                Failure::Timeout
            } else {
                Failure::Closed
            }
        }
        zbus::Error::Handshake(_) | zbus::Error::Address(_) => Failure::Connect,
        zbus::Error::FDO(f) => match f.as_ref() {
            F::ServiceUnknown(_) | F::NameHasNoOwner(_) => Failure::NoManager,
            F::NoReply(_) | F::Timeout(_) | F::TimedOut(_) => Failure::Timeout,
            F::LimitsExceeded(_) => Failure::Limits,
            F::Disconnected(_) => Failure::Closed,
            _ => Failure::Other,
        },
        zbus::Error::IncorrectType | zbus::Error::SignatureMismatch(..) => Failure::Decode,
        _ => Failure::Other,
    }
}

/// Whether an error only concerns the one object or property asked for
/// (the unit went away between ListUnits and the Get, or has no such
/// property): that item is skipped, the round goes on.
fn is_item_error(e: &zbus::Error) -> bool {
    use zbus::fdo::Error as F;
    match e {
        zbus::Error::FDO(f) => matches!(
            f.as_ref(),
            F::UnknownObject(_)
                | F::UnknownInterface(_)
                | F::UnknownProperty(_)
                | F::UnknownMethod(_)
                | F::InvalidArgs(_)
        ),
        // systemd's own errors (org.freedesktop.systemd1.NoSuchUnit, ...).
        zbus::Error::MethodError(..) => true,
        zbus::Error::IncorrectType | zbus::Error::SignatureMismatch(..) => true,
        _ => false,
    }
}

fn bus_error(e: zbus::Error) -> BusError {
    BusError {
        failure: classify(&e),
        detail: e.to_string(),
    }
}

/// A connection to the bus with the manager's signals subscribed.
pub struct Bus {
    pub conn: Connection,
    /// Unit PropertiesChanged (one match rule for every unit) and Manager signals.
    pub signals: Vec<MessageStream>,
}

/// Connect, add the two match rules, and Subscribe() so systemd emits unit
/// signals. Every call has `timeout` (zbus has no default method timeout).
pub async fn connect(bus: &BusChoice, timeout: Duration) -> Result<Bus, BusError> {
    let builder = match bus {
        BusChoice::System => zbus::connection::Builder::system(),
        BusChoice::User => zbus::connection::Builder::session(),
        BusChoice::Address(a) => zbus::connection::Builder::address(a.as_str()),
    };
    let conn = builder
        .method_timeout(timeout)
        .build()
        .await
        .map_err(|e| BusError {
            failure: match classify(&e) {
                Failure::Timeout => Failure::Timeout,
                _ => Failure::Connect,
            },
            detail: e.to_string(),
        })?;
    let queue = NonZeroUsize::new(SIGNAL_QUEUE);
    // One rule for every unit object: the system bus allows 512 match rules
    // per connection, a rule per unit would run out on a big node.
    let units_rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender(DEST)
        .interface(PROPERTIES_IFACE)
        .member("PropertiesChanged")
        .path_namespace(UNIT_PATH_NAMESPACE)
        .build()
        .map_err(bus_error)?;
    let manager_rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender(DEST)
        .interface(MANAGER_IFACE)
        .path(MANAGER_PATH)
        .build()
        .map_err(bus_error)?;
    let units = MessageStream::for_match_rule(units_rule, &conn, queue)
        .await
        .map_err(bus_error)?;
    let manager = MessageStream::for_match_rule(manager_rule, &conn, queue)
        .await
        .map_err(bus_error)?;
    // Subscribe only asks systemd to emit signals to this client; it changes
    // no unit. A repeated Subscribe answers AlreadySubscribed: harmless.
    match conn
        .call_method(
            Some(DEST),
            MANAGER_PATH,
            Some(MANAGER_IFACE),
            "Subscribe",
            &(),
        )
        .await
    {
        Ok(_) => {}
        Err(zbus::Error::MethodError(name, _, _))
            if name.as_str().ends_with("AlreadySubscribed") => {}
        Err(e) => return Err(bus_error(e)),
    }
    Ok(Bus {
        conn,
        signals: vec![units, manager],
    })
}

/// One row of ListUnits.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub name: String,
    pub load_state: String,
    pub active_state: String,
    pub path: String,
    /// Non-zero while a job is queued or running for the unit.
    pub job_id: u32,
}

type ListUnitsRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// ListUnits: every loaded unit with its load, active and sub state and job, in one call.
pub async fn list_units(conn: &Connection) -> Result<Vec<Listed>, BusError> {
    let reply = conn
        .call_method(
            Some(DEST),
            MANAGER_PATH,
            Some(MANAGER_IFACE),
            "ListUnits",
            &(),
        )
        .await
        .map_err(bus_error)?;
    let rows: Vec<ListUnitsRow> = reply.body().deserialize().map_err(bus_error)?;
    Ok(rows
        .into_iter()
        .map(|r| Listed {
            name: r.0,
            load_state: r.2,
            active_state: r.3,
            path: r.6.to_string(),
            job_id: r.7,
        })
        .collect())
}

/// One property of one object. `Ok(None)` when the error only concerns this
/// item (unit gone, property absent); `Err` when the bus or manager failed.
pub async fn get(
    conn: &Connection,
    path: &str,
    iface: &str,
    prop: &str,
) -> Result<Option<OwnedVariant>, BusError> {
    let reply = conn
        .call_method(
            Some(DEST),
            path,
            Some(PROPERTIES_IFACE),
            "Get",
            &(iface, prop),
        )
        .await;
    match reply {
        Ok(msg) => match msg.body().deserialize::<OwnedVariant>() {
            Ok(v) => Ok(Some(v)),
            Err(_) => Ok(None),
        },
        Err(e) if is_item_error(&e) => Ok(None),
        Err(e) => Err(bus_error(e)),
    }
}

/// A typed property value.
#[derive(Debug, Clone, PartialEq)]
pub enum Prop {
    U32(u32),
    U64(u64),
    Str(String),
    Strs(Vec<String>),
}

impl Prop {
    pub fn from_variant(v: &OwnedVariant) -> Option<Prop> {
        use zbus::Variant as V;
        match &**v {
            V::U32(n) => Some(Prop::U32(*n)),
            V::U64(n) => Some(Prop::U64(*n)),
            V::Str(s) => Some(Prop::Str(s.to_string())),
            V::Array(_) => Vec::<String>::try_from(v.try_clone().ok()?)
                .ok()
                .map(Prop::Strs),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Prop::U32(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Prop::U64(n) => Some(*n),
            _ => None,
        }
    }

    pub fn into_string(self) -> Option<String> {
        match self {
            Prop::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn into_strings(self) -> Option<Vec<String>> {
        match self {
            Prop::Strs(s) => Some(s),
            _ => None,
        }
    }
}

/// A decoded manager signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// PropertiesChanged on a unit object: the interface and the changed values we use.
    Properties {
        path: String,
        iface: String,
        changed: HashMap<String, Prop>,
    },
    UnitNew {
        name: String,
    },
    UnitRemoved {
        name: String,
    },
    /// Reloading(true) when a daemon-reload starts, (false) when it is done.
    Reloading(bool),
    JobRemoved {
        unit: String,
        result: String,
    },
    Other,
}

/// Properties worth decoding from a PropertiesChanged signal.
const SIGNAL_PROPS: [&str; 3] = ["ActiveState", "ActiveEnterTimestampMonotonic", "NRestarts"];

/// Decode one signal message; anything unexpected is `Other`.
pub fn decode_signal(msg: &Message) -> Signal {
    let header = msg.header();
    let (Some(member), Some(path)) = (header.member(), header.path()) else {
        return Signal::Other;
    };
    let body = msg.body();
    match member.as_str() {
        "PropertiesChanged" => {
            type Changed = (String, HashMap<String, OwnedVariant>, Vec<String>);
            let Ok((iface, changed, _)) = body.deserialize::<Changed>() else {
                return Signal::Other;
            };
            let changed = changed
                .iter()
                .filter(|(k, _)| SIGNAL_PROPS.contains(&k.as_str()))
                .filter_map(|(k, v)| Prop::from_variant(v).map(|p| (k.clone(), p)))
                .collect();
            Signal::Properties {
                path: path.to_string(),
                iface,
                changed,
            }
        }
        "UnitNew" => match body.deserialize::<(String, OwnedObjectPath)>() {
            Ok((name, _)) => Signal::UnitNew { name },
            Err(_) => Signal::Other,
        },
        "UnitRemoved" => match body.deserialize::<(String, OwnedObjectPath)>() {
            Ok((name, _)) => Signal::UnitRemoved { name },
            Err(_) => Signal::Other,
        },
        "Reloading" => match body.deserialize::<bool>() {
            Ok(active) => Signal::Reloading(active),
            Err(_) => Signal::Other,
        },
        "JobRemoved" => match body.deserialize::<(u32, OwnedObjectPath, String, String)>() {
            Ok((_, _, unit, result)) => Signal::JobRemoved { unit, result },
            Err(_) => Signal::Other,
        },
        _ => Signal::Other,
    }
}
