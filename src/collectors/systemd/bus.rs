//! D-Bus access to systemd's manager (zbus 6): connecting, ListUnits,
//! batches of single-property Gets keyed by (object path, property) with a
//! per-item answer, and decoding the manager's signals. Raw method
//! calls rather than generated proxies: a proxy with its default property
//! cache does a GetAll and an AddMatch per unit (0.5–1.1 s for 305 units).

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::time::Duration;

use futures_util::StreamExt;
use zbus::message::Type as MessageType;
use zbus::{Connection, MatchRule, Message, MessageStream, OwnedObjectPath, OwnedVariant};

use super::rules;

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

/// A property the collector reads, with its D-Bus name and type. Requests
/// and answers are keyed by (object path, property), never by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    NRestarts,
    ActiveEnterTimestampMonotonic,
    ActiveExitTimestampMonotonic,
    InactiveEnterTimestampMonotonic,
    Result,
    Restart,
    RestartUSec,
    StartLimitIntervalUSec,
    StartLimitBurst,
    Requires,
    BindsTo,
    /// Signals only: the state a unit left active for, with the Service
    /// interface's Result and ExecMainCode sent just before it.
    ActiveState,
    ExecMainCode,
    Type,
    BusName,
    RemainAfterExit,
    TriggeredBy,
}

/// The D-Bus type of a property's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    U32,
    U64,
    I32,
    Bool,
    Str,
    Strs,
}

impl Property {
    /// Properties that change only on daemon-reload: read once per unit and
    /// again after the manager's `Reloading` signal.
    pub const RELOAD_ONLY: [Property; 10] = [
        Property::Restart,
        Property::RestartUSec,
        Property::StartLimitIntervalUSec,
        Property::StartLimitBurst,
        Property::Requires,
        Property::BindsTo,
        Property::Type,
        Property::BusName,
        Property::RemainAfterExit,
        Property::TriggeredBy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Property::NRestarts => "NRestarts",
            Property::ActiveEnterTimestampMonotonic => "ActiveEnterTimestampMonotonic",
            Property::ActiveExitTimestampMonotonic => "ActiveExitTimestampMonotonic",
            Property::InactiveEnterTimestampMonotonic => "InactiveEnterTimestampMonotonic",
            Property::Result => "Result",
            Property::Restart => "Restart",
            Property::RestartUSec => "RestartUSec",
            Property::StartLimitIntervalUSec => "StartLimitIntervalUSec",
            Property::StartLimitBurst => "StartLimitBurst",
            Property::Requires => "Requires",
            Property::BindsTo => "BindsTo",
            Property::ActiveState => "ActiveState",
            Property::ExecMainCode => "ExecMainCode",
            Property::Type => "Type",
            Property::BusName => "BusName",
            Property::RemainAfterExit => "RemainAfterExit",
            Property::TriggeredBy => "TriggeredBy",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Property::NRestarts | Property::StartLimitBurst => Kind::U32,
            Property::ActiveEnterTimestampMonotonic
            | Property::ActiveExitTimestampMonotonic
            | Property::InactiveEnterTimestampMonotonic
            | Property::RestartUSec
            | Property::StartLimitIntervalUSec => Kind::U64,
            Property::ExecMainCode => Kind::I32,
            Property::RemainAfterExit => Kind::Bool,
            Property::Result
            | Property::Restart
            | Property::ActiveState
            | Property::Type
            | Property::BusName => Kind::Str,
            Property::Requires | Property::BindsTo | Property::TriggeredBy => Kind::Strs,
        }
    }

    /// The interface carrying this property on the unit `unit`; None when that
    /// unit type has no such property (a target has no Result, a socket no
    /// NRestarts), so it is never asked for.
    pub fn interface(self, unit: &str) -> Option<&'static str> {
        match self {
            Property::NRestarts
            | Property::Restart
            | Property::RestartUSec
            | Property::ExecMainCode
            | Property::Type
            | Property::BusName
            | Property::RemainAfterExit => rules::is_service(unit).then_some(SERVICE_IFACE),
            Property::Result => rules::type_interface(unit),
            _ => Some(UNIT_IFACE),
        }
    }

    /// Decode a value of this property; None when its type is not the one
    /// systemd documents.
    fn decode(self, v: &zbus::Variant<'_>) -> Option<Prop> {
        use zbus::Variant as V;
        match (self.kind(), v) {
            (Kind::U32, V::U32(n)) => Some(Prop::U32(*n)),
            (Kind::U64, V::U64(n)) => Some(Prop::U64(*n)),
            (Kind::I32, V::I32(n)) => Some(Prop::I32(*n)),
            (Kind::Bool, V::Bool(b)) => Some(Prop::Bool(*b)),
            (Kind::Str, V::Str(s)) => Some(Prop::Str(s.to_string())),
            (Kind::Strs, V::Array(_)) => Vec::<String>::try_from(v.try_clone().ok()?)
                .ok()
                .map(Prop::Strs),
            _ => None,
        }
    }

    /// The properties decoded from PropertiesChanged signals.
    fn from_signal(name: &str) -> Option<Property> {
        match name {
            "ActiveEnterTimestampMonotonic" => Some(Property::ActiveEnterTimestampMonotonic),
            "ActiveExitTimestampMonotonic" => Some(Property::ActiveExitTimestampMonotonic),
            "NRestarts" => Some(Property::NRestarts),
            "ActiveState" => Some(Property::ActiveState),
            "Result" => Some(Property::Result),
            "ExecMainCode" => Some(Property::ExecMainCode),
            _ => None,
        }
    }
}

/// Why one property read failed. The round goes on without that value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFailure {
    /// No answer within the call's timeout or before the round's deadline.
    Timeout,
    /// The bus refused the call (too many pending replies).
    Limits,
    /// An answer that is not of the property's documented type.
    Decode,
    /// Any other error from the bus or systemd.
    Other,
}

impl ReadFailure {
    pub const ALL: [ReadFailure; 4] = [
        ReadFailure::Timeout,
        ReadFailure::Limits,
        ReadFailure::Decode,
        ReadFailure::Other,
    ];

    /// The `reason` label.
    pub fn reason(self) -> &'static str {
        match self {
            ReadFailure::Timeout => "timeout",
            ReadFailure::Limits => "limits",
            ReadFailure::Decode => "decode",
            ReadFailure::Other => "other",
        }
    }
}

/// The answer to one property read.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Value(Prop),
    /// The unit or property does not exist (unit unloaded since ListUnits,
    /// a systemd too old to have the property): unknown, and not a failure.
    Absent,
    Failed(ReadFailure),
}

/// What a batch entry is looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub path: String,
    pub prop: Property,
}

impl Key {
    pub fn new(path: &str, prop: Property) -> Key {
        Key {
            path: path.to_string(),
            prop,
        }
    }
}

/// A set of property reads; a key asked for twice is read once.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    requests: BTreeMap<Key, &'static str>,
}

impl Batch {
    /// Ask for `prop` of `unit` (at `path`); returns the key, or None when the
    /// unit type has no such property.
    pub fn add(&mut self, unit: &str, path: &str, prop: Property) -> Option<Key> {
        let iface = prop.interface(unit)?;
        let key = Key::new(path, prop);
        self.requests.insert(key.clone(), iface);
        Some(key)
    }

    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

/// The answers to a batch, by key: every key of the batch has one.
#[derive(Debug, Default, Clone)]
pub struct Replies {
    map: HashMap<Key, Reply>,
}

impl Replies {
    /// The answer for `key`; a key that was not in the batch reads as not answered.
    pub fn get(&self, key: &Key) -> &Reply {
        const UNASKED: Reply = Reply::Failed(ReadFailure::Other);
        self.map.get(key).unwrap_or(&UNASKED)
    }

    /// Failed reads, for counting.
    pub fn failures(&self) -> impl Iterator<Item = ReadFailure> + '_ {
        self.map.values().filter_map(|r| match r {
            Reply::Failed(why) => Some(*why),
            _ => None,
        })
    }

    /// Answers as tests need them, without a bus.
    #[cfg(test)]
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Key, Reply)>) -> Replies {
        Replies {
            map: pairs.into_iter().collect(),
        }
    }
}

/// Read a batch with at most `in_flight` Gets outstanding. Reads still
/// unanswered at `deadline` count as timed out; only a closed connection or
/// a manager that left the bus fails the batch.
pub async fn read(
    conn: &Connection,
    batch: &Batch,
    in_flight: usize,
    deadline: tokio::time::Instant,
) -> Result<Replies, BusError> {
    if batch.is_empty() {
        return Ok(Replies::default());
    }
    // Built eagerly with owned keys: a lazily mapped closure over borrowed
    // entries trips the compiler's Send check of the collector's future.
    let calls: Vec<_> = batch
        .requests
        .iter()
        .map(|(key, iface)| {
            let (conn, key, iface) = (conn.clone(), key.clone(), *iface);
            async move {
                let reply = get(&conn, &key.path, iface, key.prop).await;
                (key, reply)
            }
        })
        .collect();
    let mut map = HashMap::with_capacity(batch.len());
    let mut answers = futures_util::stream::iter(calls).buffer_unordered(in_flight.max(1));
    let drained = tokio::time::timeout_at(deadline, async {
        while let Some((key, reply)) = answers.next().await {
            map.insert(key, reply?);
        }
        Ok(())
    })
    .await;
    if let Ok(Err(e)) = drained {
        return Err(e);
    }
    for key in batch.requests.keys() {
        map.entry(key.clone())
            .or_insert(Reply::Failed(ReadFailure::Timeout));
    }
    Ok(Replies { map })
}

/// One property of one object. `Err` only when the connection or the manager
/// is gone (then every other read fails too); anything else is this item's.
async fn get(
    conn: &Connection,
    path: &str,
    iface: &str,
    prop: Property,
) -> Result<Reply, BusError> {
    let reply = conn
        .call_method(
            Some(DEST),
            path,
            Some(PROPERTIES_IFACE),
            "Get",
            &(iface, prop.name()),
        )
        .await;
    match reply {
        Ok(msg) => Ok(match msg.body().deserialize::<OwnedVariant>() {
            Ok(v) => prop
                .decode(&v)
                .map_or(Reply::Failed(ReadFailure::Decode), Reply::Value),
            Err(_) => Reply::Failed(ReadFailure::Decode),
        }),
        Err(e) => item_reply(e),
    }
}

/// Sort a failed Get: the item is absent, this read failed, or the bus is gone.
fn item_reply(e: zbus::Error) -> Result<Reply, BusError> {
    use zbus::fdo::Error as F;
    let absent = match &e {
        zbus::Error::FDO(f) => matches!(
            f.as_ref(),
            F::UnknownObject(_)
                | F::UnknownInterface(_)
                | F::UnknownProperty(_)
                | F::UnknownMethod(_)
                | F::InvalidArgs(_)
        ),
        // systemd's own errors (org.freedesktop.systemd1.NoSuchUnit, ...).
        zbus::Error::MethodError(name, _, _) => name.as_str().starts_with(DEST),
        _ => false,
    };
    if absent {
        return Ok(Reply::Absent);
    }
    Ok(Reply::Failed(match classify(&e) {
        Failure::Timeout => ReadFailure::Timeout,
        Failure::Limits => ReadFailure::Limits,
        Failure::Decode => ReadFailure::Decode,
        Failure::Other => ReadFailure::Other,
        Failure::Closed | Failure::Connect | Failure::NoManager => return Err(bus_error(e)),
    }))
}

/// A typed property value.
#[derive(Debug, Clone, PartialEq)]
pub enum Prop {
    U32(u32),
    U64(u64),
    I32(i32),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
}

impl Prop {
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

    pub fn as_i32(&self) -> Option<i32> {
        match self {
            Prop::I32(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Prop::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Prop::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_strs(&self) -> Option<&[String]> {
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
        changed: HashMap<Property, Prop>,
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
    /// A signal we use whose body, or a property in it we use, is not of the
    /// documented type: counted, never taken for "nothing changed".
    Undecodable,
    /// A signal we do not use.
    Other,
}

/// Decode one signal message.
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
                return Signal::Undecodable;
            };
            let mut wanted = HashMap::new();
            for (name, v) in &changed {
                let Some(prop) = Property::from_signal(name) else {
                    continue;
                };
                match prop.decode(v) {
                    Some(value) => wanted.insert(prop, value),
                    None => return Signal::Undecodable,
                };
            }
            Signal::Properties {
                path: path.to_string(),
                iface,
                changed: wanted,
            }
        }
        "UnitNew" => match body.deserialize::<(String, OwnedObjectPath)>() {
            Ok((name, _)) => Signal::UnitNew { name },
            Err(_) => Signal::Undecodable,
        },
        "UnitRemoved" => match body.deserialize::<(String, OwnedObjectPath)>() {
            Ok((name, _)) => Signal::UnitRemoved { name },
            Err(_) => Signal::Undecodable,
        },
        "Reloading" => match body.deserialize::<bool>() {
            Ok(active) => Signal::Reloading(active),
            Err(_) => Signal::Undecodable,
        },
        "JobRemoved" => match body.deserialize::<(u32, OwnedObjectPath, String, String)>() {
            Ok((_, _, unit, result)) => Signal::JobRemoved { unit, result },
            Err(_) => Signal::Undecodable,
        },
        _ => Signal::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_decode_only_as_their_documented_type() {
        use zbus::Variant as V;
        let cases = [
            (Property::NRestarts, V::U32(3), Some(Prop::U32(3))),
            // A u64 where systemd documents u: a decode failure, not a 0.
            (Property::NRestarts, V::U64(3), None),
            (Property::RestartUSec, V::U64(100), Some(Prop::U64(100))),
            (Property::RestartUSec, V::Str("1s".into()), None),
            (
                Property::Result,
                V::Str("exit-code".into()),
                Some(Prop::Str("exit-code".into())),
            ),
            (Property::Restart, V::U32(1), None),
            (
                Property::Requires,
                V::from(vec!["a.service", "b.service"]),
                Some(Prop::Strs(vec!["a.service".into(), "b.service".into()])),
            ),
            (Property::Requires, V::from(vec![1u32, 2]), None),
            (
                Property::BindsTo,
                V::from(Vec::<String>::new()),
                Some(Prop::Strs(vec![])),
            ),
        ];
        for (prop, v, want) in cases {
            assert_eq!(prop.decode(&v), want, "{prop:?} {v:?}");
        }
    }

    #[test]
    fn interfaces_by_unit_type() {
        let cases = [
            (Property::NRestarts, "a.service", Some(SERVICE_IFACE)),
            (Property::NRestarts, "a.socket", None),
            (Property::RestartUSec, "a.target", None),
            (
                Property::Result,
                "a.socket",
                Some("org.freedesktop.systemd1.Socket"),
            ),
            (Property::Result, "a.target", None),
            (Property::Requires, "a.target", Some(UNIT_IFACE)),
            (
                Property::InactiveEnterTimestampMonotonic,
                "a.mount",
                Some(UNIT_IFACE),
            ),
        ];
        for (prop, unit, want) in cases {
            assert_eq!(prop.interface(unit), want, "{prop:?} {unit}");
        }
    }

    #[test]
    fn a_batch_reads_each_key_once_and_skips_what_a_type_lacks() {
        let mut b = Batch::default();
        let p = "/org/freedesktop/systemd1/unit/a_2eservice";
        assert!(b.add("a.service", p, Property::NRestarts).is_some());
        assert!(b.add("a.service", p, Property::NRestarts).is_some());
        assert!(
            b.add("a.service", p, Property::ActiveEnterTimestampMonotonic)
                .is_some()
        );
        assert!(b.add("x.target", "/x", Property::Result).is_none());
        assert_eq!(b.len(), 2);
        // An answer is found by its key, whatever order the answers came in.
        let r = Replies::from_pairs([
            (
                Key::new(p, Property::ActiveEnterTimestampMonotonic),
                Reply::Value(Prop::U64(7)),
            ),
            (
                Key::new(p, Property::NRestarts),
                Reply::Failed(ReadFailure::Limits),
            ),
        ]);
        assert_eq!(
            r.get(&Key::new(p, Property::ActiveEnterTimestampMonotonic)),
            &Reply::Value(Prop::U64(7))
        );
        assert_eq!(r.failures().collect::<Vec<_>>(), vec![ReadFailure::Limits]);
        assert_eq!(
            r.get(&Key::new(p, Property::Result)),
            &Reply::Failed(ReadFailure::Other),
            "a key not asked for is not an answer"
        );
    }
}
