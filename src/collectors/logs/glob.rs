//! `GROUP=GLOB` values and the glob syntax: `*`, `?`, `[...]` within one path
//! component, `**` as a whole component for "any number of directories".
//!
//! Parsing is pure and runs once at start-up (a bad value exits 2 naming the
//! flag); matching a component is pure too. The directory walk lives in
//! `walk.rs`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// One `--collector.logs.path` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupGlob {
    pub group: String,
    pub glob: Glob,
}

/// A parsed absolute glob, as a host path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    /// As given, for messages.
    pub raw: String,
    /// The leading components without wildcards (always absolute).
    pub base: PathBuf,
    /// The components after `base`; never empty.
    pub parts: Vec<Part>,
}

/// One path component of a glob after its literal prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A name without wildcards (escapes removed).
    Literal(OsString),
    /// A component with `*`, `?` or `[...]`, matched by [`matches`].
    Pattern(Vec<u8>),
    /// `**`: zero or more directories.
    AnyDirs,
}

/// Parse `GROUP=GLOB` (clap value parser for `--collector.logs.path`).
pub fn parse_group_glob(s: &str) -> Result<GroupGlob, String> {
    let (group, glob) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not GROUP=GLOB (e.g. varlog=/var/log/**/*)"))?;
    if group.is_empty()
        || !group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(format!(
            "'{s}': the group name must be non-empty and use only letters, digits, '_', '-', '.'"
        ));
    }
    let glob = parse_glob(glob).map_err(|why| format!("'{s}': {why}"))?;
    Ok(GroupGlob {
        group: group.to_string(),
        glob,
    })
}

/// Parse an absolute glob into its literal base and the components to match.
pub fn parse_glob(raw: &str) -> Result<Glob, String> {
    if !raw.starts_with('/') {
        return Err("the glob must be an absolute path".into());
    }
    let mut base = PathBuf::from("/");
    let mut parts: Vec<Part> = Vec::new();
    for comp in raw.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let part = if comp == "**" {
            Part::AnyDirs
        } else if has_wildcard(comp.as_bytes()) {
            validate_pattern(comp.as_bytes())?;
            Part::Pattern(comp.as_bytes().to_vec())
        } else {
            Part::Literal(OsString::from_vec(unescape(comp.as_bytes())))
        };
        match part {
            Part::Literal(name) if parts.is_empty() => base.push(name),
            // `a/**/**/b` walks the same directories twice.
            Part::AnyDirs if parts.last() == Some(&Part::AnyDirs) => {}
            part => parts.push(part),
        }
    }
    if parts.last() == Some(&Part::AnyDirs) {
        // `/var/log/**` means every file below /var/log.
        parts.push(Part::Pattern(b"*".to_vec()));
    }
    if parts.is_empty() {
        // A plain file path: its parent is the base, its name the one part.
        let name = base
            .file_name()
            .map(|n| n.to_os_string())
            .ok_or("the glob names no file")?;
        base.pop();
        parts.push(Part::Literal(name));
    }
    Ok(Glob {
        raw: raw.to_string(),
        base,
        parts,
    })
}

fn has_wildcard(comp: &[u8]) -> bool {
    let mut i = 0;
    while i < comp.len() {
        match comp[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

fn unescape(comp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(comp.len());
    let mut i = 0;
    while i < comp.len() {
        if comp[i] == b'\\' && i + 1 < comp.len() {
            i += 1;
        }
        out.push(comp[i]);
        i += 1;
    }
    out
}

fn validate_pattern(p: &[u8]) -> Result<(), String> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' => i += 1,
            b'[' => {
                i = class_end(p, i).ok_or("unclosed '[' in the glob")?;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Index of the `]` closing the class that opens at `open`.
fn class_end(p: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if matches!(p.get(i), Some(b'!' | b'^')) {
        i += 1;
    }
    // A `]` right after the opening (or its negation) is a member, as in fnmatch.
    if p.get(i) == Some(&b']') {
        i += 1;
    }
    while i < p.len() {
        match p[i] {
            b'\\' => i += 1,
            b']' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether `name` (one path component) matches the pattern `p`.
/// `*` matches any run of bytes (dot files included), `?` one byte,
/// `[a-z]` / `[!a-z]` one byte of (not of) the class, `\x` the byte x.
pub fn matches(p: &[u8], name: &[u8]) -> bool {
    // Iterative matcher with one backtrack point for the latest `*`: linear
    // in practice, never exponential.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < name.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(pi + 1),
            Some(b'[') => match class_end(p, pi) {
                Some(end) if class_matches(&p[pi + 1..end], name[ni]) => Some(end + 1),
                Some(_) => None,
                None => (name[ni] == b'[').then_some(pi + 1),
            },
            Some(b'\\') if pi + 1 < p.len() => (p[pi + 1] == name[ni]).then_some(pi + 2),
            Some(&c) => (c == name[ni]).then_some(pi + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ni += 1;
            }
            (None, Some((sp, sn))) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn class_matches(class: &[u8], b: u8) -> bool {
    let (negate, class) = match class.first() {
        Some(b'!' | b'^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut i = 0;
    let mut hit = false;
    while i < class.len() {
        let mut lo = class[i];
        if lo == b'\\' && i + 1 < class.len() {
            i += 1;
            lo = class[i];
        }
        if i + 2 < class.len() && class[i + 1] == b'-' {
            let hi = class[i + 2];
            hit |= (lo..=hi).contains(&b);
            i += 3;
        } else {
            hit |= lo == b;
            i += 1;
        }
    }
    hit != negate
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's corpus (fuzz/corpus/glob, grown by
    /// `cargo +nightly fuzz run glob`), replayed the way the target runs it.
    #[test]
    fn the_fuzz_corpus_replays_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/glob");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let mut lines = data.split(|b| *b == b'\n');
            let Some(flag) = lines.next().and_then(|l| std::str::from_utf8(l).ok()) else {
                continue;
            };
            let Ok(parsed) = parse_group_glob(flag) else {
                continue;
            };
            for name in lines {
                for part in &parsed.glob.parts {
                    if let Part::Pattern(p) = part {
                        let _ = matches(p, name);
                    }
                }
            }
            replayed += 1;
        }
        assert!(replayed >= 3, "{replayed} corpus files in {}", dir.display());
    }

    #[test]
    fn component_matching() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "syslog", true),
            ("*", ".hidden", true),
            ("*", "", true),
            ("*.log", "kern.log", true),
            ("*.log", "kern.log.1", false),
            ("*-json.log", "abc-json.log", true),
            ("*-json.log", "abc-json.log.1", false),
            ("syslog*", "syslog.2.gz", true),
            ("?yslog", "syslog", true),
            ("?yslog", "yslog", false),
            ("[a-c]*", "b1", true),
            ("[a-c]*", "d1", false),
            ("[!a-c]*", "d1", true),
            ("[^a-c]*", "a1", false),
            ("[]]x", "]x", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            (
                "*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("log.[0-9]", "log.7", true),
            ("log.[0-9]", "log.x", false),
        ];
        for (p, name, want) in cases {
            assert_eq!(
                matches(p.as_bytes(), name.as_bytes()),
                *want,
                "{p} vs {name}"
            );
        }
    }

    #[test]
    fn globs_split_into_base_and_parts() {
        let g = parse_glob("/var/log/**/*").unwrap();
        assert_eq!(g.base, PathBuf::from("/var/log"));
        assert_eq!(g.parts, vec![Part::AnyDirs, Part::Pattern(b"*".to_vec())]);

        let g = parse_glob("/var/lib/docker/containers/*/*-json.log").unwrap();
        assert_eq!(g.base, PathBuf::from("/var/lib/docker/containers"));
        assert_eq!(g.parts.len(), 2);

        let g = parse_glob("/var/log/syslog").unwrap();
        assert_eq!(g.base, PathBuf::from("/var/log"));
        assert_eq!(g.parts, vec![Part::Literal("syslog".into())]);

        let g = parse_glob("/a/**/**/b/x\\*y/**").unwrap();
        assert_eq!(
            g.parts,
            vec![
                Part::AnyDirs,
                Part::Literal("b".into()),
                Part::Literal("x*y".into()),
                Part::AnyDirs,
                Part::Pattern(b"*".to_vec())
            ]
        );
    }

    #[test]
    fn bad_values_are_rejected() {
        for bad in [
            "varlog",
            "=/var/log/*",
            "var log=/var/log/*",
            "varlog=var/log/*",
            "varlog=",
            "varlog=/",
            "varlog=/var/log/[abc",
        ] {
            assert!(parse_group_glob(bad).is_err(), "{bad}");
        }
        let ok = parse_group_glob("my-app.v2=/srv/app/logs/*.log").unwrap();
        assert_eq!(ok.group, "my-app.v2");
        assert_eq!(ok.glob.raw, "/srv/app/logs/*.log");
    }
}
