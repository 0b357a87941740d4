//! A file appended to in whole lines: a line that fails partway is cut back, and a partial
//! last line left by a crash is cut off at open.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// A file appended to in whole lines.
pub(super) struct LineFile {
    file: File,
    /// A failed write could not be cut back: the next append cuts it first.
    cut_to: Option<u64>,
}

impl LineFile {
    /// Open for appending (created with its directory if missing). Returns the file and
    /// how many bytes of a partial last line were cut off.
    pub(super) fn open(path: &Path) -> io::Result<(LineFile, u64)> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).read(true).open(path)?;
        let mut line_file = LineFile { file, cut_to: None };
        let cut = line_file.cut_partial_line()?;
        Ok((line_file, cut))
    }

    fn cut_partial_line(&mut self) -> io::Result<u64> {
        let metadata = self.file.metadata()?;
        let length = metadata.len();
        if !metadata.is_file() || length == 0 {
            return Ok(0);
        }
        let mut end = length;
        let mut chunk = vec![0; 64 << 10];
        let mut last_newline = None;
        while end > 0 && last_newline.is_none() {
            let start = end.saturating_sub(chunk.len() as u64);
            let window = &mut chunk[..(end - start) as usize];
            self.file.seek(SeekFrom::Start(start))?;
            self.file.read_exact(window)?;
            last_newline = window.iter().rposition(|b| *b == b'\n').map(|i| start + i as u64 + 1);
            if last_newline.is_none() {
                end = start;
            }
        }
        let keep = last_newline.unwrap_or(0);
        if keep < length {
            self.file.set_len(keep)?;
        }
        Ok(length - keep)
    }

    /// Append `line` whole, or leave the file as it was.
    pub(super) fn append(&mut self, line: &[u8]) -> io::Result<()> {
        if let Some(length) = self.cut_to {
            self.file.set_len(length)?;
            self.cut_to = None;
        }
        let metadata = self.file.metadata()?;
        let before = metadata.len();
        if let Err(error) = self.file.write_all(line) {
            if metadata.is_file() && self.file.set_len(before).is_err() {
                self.cut_to = Some(before);
            }
            return Err(error);
        }
        Ok(())
    }

    pub(super) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}
