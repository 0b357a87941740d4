//! What a JSONL sink and its spill already hold, read back: at start-up (so a restart from
//! an older checkpoint writes nothing twice) and when a spill is taken up.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub(super) fn spill_line_already_written(line: &[u8], skip: &HashSet<String>) -> bool {
    if skip.is_empty() {
        return false;
    }
    conversation_of(line).is_some_and(|conversation| skip.contains(&conversation))
}

pub(super) fn conversation_of(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Id {
        conversation_id: String,
    }
    serde_json::from_slice::<Id>(line).ok().map(|id| id.conversation_id)
}

/// Conversation ids in the last `tail_bytes` of a JSONL sink — continued into the file
/// logrotate renamed it to (`<path>.1`) when the sink itself is shorter: what was closed
/// (and written) recently, so that a restart from an older checkpoint does not write it
/// twice.
pub fn closed_in_sink(path: &Path, tail_bytes: u64) -> io::Result<HashSet<String>> {
    let mut ids = HashSet::new();
    let mut rotated = path.as_os_str().to_owned();
    rotated.push(".1");
    let mut budget = tail_bytes;
    for file in [path.to_path_buf(), PathBuf::from(rotated)] {
        if budget == 0 {
            break;
        }
        let mut file = match File::open(&file) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        let length = file.metadata()?.len();
        file.seek(SeekFrom::Start(length.saturating_sub(budget)))?;
        budget = budget.saturating_sub(length);
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)?;
        // The first line may be cut by the seek, and the last by a crash: both fail to parse.
        ids.extend(tail.split(|b| *b == b'\n').filter_map(conversation_of));
    }
    Ok(ids)
}

/// Conversation ids in a spill file (written once the sink takes them).
pub fn spilled(path: &Path) -> io::Result<HashSet<String>> {
    let mut ids = HashSet::new();
    spill_lines(path, |line| ids.extend(conversation_of(line)))?;
    Ok(ids)
}

/// Hand each whole line of a spill file to `each`, a line at a time (a spill may be large);
/// returns how many there were. No file: none.
pub(super) fn spill_lines(path: &Path, mut each: impl FnMut(&[u8])) -> io::Result<usize> {
    let mut reader = match File::open(path) {
        Ok(file) => io::BufReader::new(file),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let (mut line, mut count) = (Vec::new(), 0);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 || line.last() != Some(&b'\n') {
            return Ok(count);
        }
        each(&line);
        count += 1;
    }
}
