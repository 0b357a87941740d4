//! Compact forms of what every open timeline holds many of (an open conversation should
//! cost at most about 1 KiB): [`Symbol`] for values from small sets that repeat across conversations
//! (purposes, media, disconnect types, user and queue ids), [`CompactId`] for the ids that
//! do not repeat but are nearly always UUIDs.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{LazyLock, RwLock};

/// A string interned for the life of the process, four bytes wherever it is held.
///
/// Only for organisation-bounded sets — purposes, media, disconnect types, user and queue
/// ids — so the table stays as small as the contact center: never for conversation or
/// participant ids, which are new every time. Text from outside goes through
/// [`Symbol::intern`], which keeps the table within [`SymbolLimits`] (a peer sending a
/// million distinct queue ids would otherwise grow it for the life of the process).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Symbol(NonZeroU32);

/// How many strings the table keeps, and how long one may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymbolLimits {
    pub count: usize,
    pub bytes: usize,
}

impl Default for SymbolLimits {
    /// Far above any organisation's users, queues, purposes and media; ids are 36 bytes.
    fn default() -> Self {
        SymbolLimits { count: 200_000, bytes: 256 }
    }
}

static MAX_COUNT: AtomicUsize = AtomicUsize::new(200_000);
static MAX_BYTES: AtomicUsize = AtomicUsize::new(256);

/// Strings refused by [`Symbol::intern`] (too long, or the table full).
static REFUSED: LazyLock<prometheus_client::metrics::counter::Counter> = LazyLock::new(Default::default);

#[derive(Default)]
struct Interner {
    symbols: HashMap<&'static str, Symbol>,
    names: Vec<&'static str>,
}

static INTERNER: LazyLock<RwLock<Interner>> = LazyLock::new(Default::default);

impl Symbol {
    /// Bound the table (the process's one, set once at start-up).
    pub fn set_limits(limits: SymbolLimits) {
        MAX_COUNT.store(limits.count, AtomicOrdering::Relaxed);
        MAX_BYTES.store(limits.bytes, AtomicOrdering::Relaxed);
    }

    /// How many strings [`Symbol::intern`] refused, as a counter to register.
    pub fn refused() -> prometheus_client::metrics::counter::Counter {
        REFUSED.clone()
    }

    /// Text from outside: its symbol, or `None` (counted) when it is longer than the limit
    /// or new while the table is full — the field is then left out rather than kept.
    pub fn intern(text: &str) -> Option<Symbol> {
        let limits = SymbolLimits {
            count: MAX_COUNT.load(AtomicOrdering::Relaxed),
            bytes: MAX_BYTES.load(AtomicOrdering::Relaxed),
        };
        Symbol::intern_within(text, limits)
    }

    fn intern_within(text: &str, limits: SymbolLimits) -> Option<Symbol> {
        if let Some(symbol) = read_interner().symbols.get(text) {
            return Some(*symbol);
        }
        if text.len() > limits.bytes || read_interner().names.len() >= limits.count {
            REFUSED.inc();
            return None;
        }
        Some(Symbol::known(text))
    }

    /// Text the code itself names (or a test): interned whatever the limits say.
    pub fn known(text: &str) -> Symbol {
        if let Some(symbol) = read_interner().symbols.get(text) {
            return *symbol;
        }
        let mut interner = INTERNER.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(symbol) = interner.symbols.get(text) {
            return *symbol;
        }
        // Leaked on purpose: interned strings live as long as the process (see above).
        let name: &'static str = Box::leak(text.to_owned().into_boxed_str());
        interner.names.push(name);
        let number = u32::try_from(interner.names.len()).unwrap_or(u32::MAX);
        let symbol = Symbol(NonZeroU32::new(number).unwrap_or(NonZeroU32::MAX));
        interner.symbols.insert(name, symbol);
        symbol
    }

    pub fn as_str(self) -> &'static str {
        read_interner().names.get(self.0.get() as usize - 1).copied().unwrap_or("")
    }
}

fn read_interner() -> std::sync::RwLockReadGuard<'static, Interner> {
    INTERNER.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// For text known in code (and tests); outside text goes through [`Symbol::intern`].
impl From<&str> for Symbol {
    fn from(text: &str) -> Self {
        Symbol::known(text)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An id kept in 16 bytes when it is a canonical lower-case hyphenated UUID (as Genesys
/// writes every id), and as the text it came as otherwise: it always renders back exactly.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum CompactId {
    Uuid([u8; 16]),
    Text(Box<str>),
}

const UUID_LENGTH: usize = 36;
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

impl CompactId {
    pub fn new(text: &str) -> Self {
        parse_uuid(text).map_or_else(|| CompactId::Text(text.into()), CompactId::Uuid)
    }

    /// Whether this is `text`, without allocating.
    pub fn is(&self, text: &str) -> bool {
        match self {
            CompactId::Uuid(bytes) => parse_uuid(text).is_some_and(|parsed| parsed == *bytes),
            CompactId::Text(own) => &**own == text,
        }
    }

    /// Write the id into `buffer` and return it as text (no allocation for a UUID).
    fn render<'a>(&'a self, buffer: &'a mut [u8; UUID_LENGTH]) -> &'a str {
        match self {
            CompactId::Text(text) => text,
            CompactId::Uuid(bytes) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut at = 0;
                for (index, byte) in bytes.iter().enumerate() {
                    if matches!(index, 4 | 6 | 8 | 10) {
                        buffer[at] = b'-';
                        at += 1;
                    }
                    buffer[at] = HEX[usize::from(byte >> 4)];
                    buffer[at + 1] = HEX[usize::from(byte & 0x0f)];
                    at += 2;
                }
                // Only ASCII was written.
                std::str::from_utf8(buffer).unwrap_or_default()
            }
        }
    }

    pub fn with_str<T>(&self, use_it: impl FnOnce(&str) -> T) -> T {
        let mut buffer = [0; UUID_LENGTH];
        use_it(self.render(&mut buffer))
    }
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != UUID_LENGTH || HYPHENS.iter().any(|&at| bytes[at] != b'-') {
        return None;
    }
    let mut digits = bytes.iter().enumerate().filter(|(at, _)| !HYPHENS.contains(at)).map(|(_, b)| *b);
    let mut parsed = [0u8; 16];
    for byte in &mut parsed {
        let high = lower_hex(digits.next()?)?;
        let low = lower_hex(digits.next()?)?;
        *byte = high << 4 | low;
    }
    Some(parsed)
}

/// Upper-case digits are not accepted: the id would not render back as it came.
fn lower_hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for CompactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|text| f.write_str(text))
    }
}

impl fmt::Debug for CompactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|text| fmt::Debug::fmt(text, f))
    }
}

impl From<&str> for CompactId {
    fn from(text: &str) -> Self {
        CompactId::new(text)
    }
}

impl From<&CompactId> for String {
    fn from(id: &CompactId) -> Self {
        id.to_string()
    }
}

/// Ordered as their text is (canonical UUIDs order as their bytes do).
impl Ord for CompactId {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (CompactId::Uuid(a), CompactId::Uuid(b)) => a.cmp(b),
            (CompactId::Text(a), CompactId::Text(b)) => a.cmp(b),
            _ => self.with_str(|a| other.with_str(|b| a.cmp(b))),
        }
    }
}

impl PartialOrd for CompactId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_symbol_is_interned_once_and_renders_back() {
        let agent = Symbol::known("agent");
        assert_eq!(Some(agent), Symbol::intern("agent"));
        assert_ne!(agent, Symbol::known("acd"));
        assert_eq!(agent.as_str(), "agent");
        assert_eq!(format!("{agent:?}"), "\"agent\"");
    }

    #[test]
    fn only_canonical_uuids_are_packed_and_every_id_renders_back() {
        let canonical = "0f9a2c1e-5b3d-4e7f-8a1b-2c3d4e5f6a7b";
        assert!(matches!(CompactId::new(canonical), CompactId::Uuid(_)));
        for other in
            ["0F9A2C1E-5B3D-4E7F-8A1B-2C3D4E5F6A7B", "p1", "0f9a2c1e5b3d4e7f8a1b2c3d4e5f6a7b0000", ""]
        {
            assert!(matches!(CompactId::new(other), CompactId::Text(_)), "{other}");
        }
        for text in [canonical, "p1", "0F9A2C1E-5B3D-4E7F-8A1B-2C3D4E5F6A7B"] {
            let id = CompactId::new(text);
            assert_eq!(id.to_string(), text);
            assert!(id.is(text));
            assert!(!id.is("p2"));
        }
    }

    fn uuid_text() -> impl Strategy<Value = String> {
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    }

    proptest! {
        #[test]
        fn ids_order_as_their_text_does(
            a in prop_oneof![uuid_text(), "[0-9a-zA-Z-]{0,40}"],
            b in prop_oneof![uuid_text(), "[0-9a-zA-Z-]{0,40}"],
        ) {
            let (x, y) = (CompactId::new(&a), CompactId::new(&b));
            prop_assert_eq!(x.to_string(), a.clone());
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            prop_assert_eq!(x == y, a == b);
        }
    }

    /// The process-wide limits stay as they are (other tests intern meanwhile): the full
    /// table is played with limits of its own.
    #[test]
    fn outside_text_past_the_limits_is_refused_and_counted() {
        let before = Symbol::refused().get();
        assert!(Symbol::intern(&"x".repeat(257)).is_none(), "longer than 256 bytes");
        assert!(Symbol::intern(&"y".repeat(256)).is_some());
        let full = SymbolLimits { count: 1, bytes: 256 };
        assert!(Symbol::intern_within("never-seen-queue-7f3a", full).is_none(), "new text, table full");
        assert!(Symbol::intern_within(&"y".repeat(256), full).is_some(), "what is kept is still found");
        assert!(Symbol::refused().get() - before >= 2);
    }
}
