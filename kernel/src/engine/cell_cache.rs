//! Compiled cells, kept across kernels: a notebook run again in a new kernel finds its cells
//! compiled.
//!
//! evcxr compiles each cell into a crate of its own (`ctx`), together with the items and the
//! variables' types of the cells before it, so the crate's source says everything the cell's
//! code can see. "Restart & Run All" then builds exactly the crates of the previous run, one per
//! cell, and rustc's incremental cache cannot help: the source changes from cell to cell. With
//! the course's opt-level each of those compiles costs 0.2–0.7 s (notebook 01's cells).
//!
//! So the engine makes cargo run rustc through this executable ([`commands`]), and here, for
//! evcxr's cell crate only, the compile is looked up before rustc runs:
//!
//! - The key ([`Invocation::key`]) is the compiler (its path, size and modification time), its
//!   arguments, the crate root's text (its items in any order, see [`canonical_source`]:
//!   evcxr writes them in an order of its own each time), and the *contents* of every library
//!   passed with `--extern` (hashed once per file version and remembered, see
//!   [`content_hash`]). Cargo's `-C metadata` argument already covers the compiler's version,
//!   the profile and the dependency graph; the libraries' contents cover a dependency rebuilt
//!   from changed source (a path crate), which keeps its file name. Transitive dependencies
//!   need no entry of their own: when one changes, cargo rebuilds the direct dependencies
//!   above it.
//! - rustc reports what else the crate read (`include_str!`, `env!`) in its dep-info file. An
//!   entry keeps those inputs, and a lookup checks them ([`Inputs`]).
//! - The crate directory (evcxr's work slot) appears in the arguments and in what rustc writes.
//!   It is replaced by a placeholder in the key and in the entry, and put back on the way out,
//!   so a kernel in another slot (a spare, a second notebook) finds what this one compiled.
//! - A hit writes rustc's outputs (the library, the dep-info file) where rustc would have, and
//!   replays rustc's stdout and stderr: cargo learns about the artifacts from those lines, and
//!   sees the same warnings. Anything that goes wrong on the way is a miss: rustc runs.
//! - Only successful compiles are kept: `<key>/<variant>/`, one variant per set of those other
//!   inputs, so kernels whose compiles read different values keep one each. A variant is
//!   written whole under a temporary name and renamed, and never changed after: concurrent
//!   kernels see a whole variant or none. The least recently used go when the cache outgrows
//!   its limit ([`evict`]).
//!
//! What the key cannot see: a library the cell links only through another one (a dependency's
//! dependency) whose build script bundled changed native code while its Rust source stayed the
//! same, and files or variables a procedural macro reads without telling rustc. Cargo's own
//! freshness checks miss both too; `KETTLE_CELL_CACHE_MB=0` turns the cache off.
//!
//! Every other crate's compile (dependencies, rustc's version queries) runs rustc as if we
//! were not there; evcxr's `cargo check` of the cell crate is kept like a build (its `--emit`
//! is part of the key). When evcxr puts another wrapper in place (`:cache`, `:sccache`, or
//! static linking turned off) this cache is not used.

use super::build_progress::CELL_CRATE;
use super::workdir::{copy_whole, unused_for, write_whole};
use sha2::{Digest, Sha256};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Set in the environment of evcxr's cargo runs: this cache's directory. Its presence is what
/// makes this executable a rustc wrapper.
const DIR_ENV: &str = "KETTLE_CELL_CACHE_WRAP";
/// Set beside [`DIR_ENV`]: the cache's size limit in bytes.
const LIMIT_ENV: &str = "KETTLE_CELL_CACHE_LIMIT";
/// Kernel setting: the cache's size limit in MiB; 0 turns the cache off.
const MIB_ENV: &str = "KETTLE_CELL_CACHE_MB";
/// Kernel setting: where the cache lives (default: `cells` in kettle's cache directory).
const PLACE_ENV: &str = "KETTLE_CELL_CACHE_DIR";
const DEFAULT_MIB: u64 = 512;
/// Stands for the crate directory in keys and entries.
const CRATE_DIR_MARK: &str = "\u{1}kettle-crate-dir\u{1}";
/// Changes whenever an entry's layout or the key's inputs change, so old entries are not read.
const FORMAT: &str = "kettle cell cache 2";
/// Hex digits naming a key's directory, and a variant's within it.
const KEY_LEN: usize = 64;
const VARIANT_LEN: usize = 16;

/// Where the cache is and how large it may grow, from the kernel's environment; `None` when
/// it is turned off or there is nowhere to put it.
pub fn settings() -> Option<(PathBuf, u64)> {
    let mib = match std::env::var(MIB_ENV) {
        Ok(value) => value.trim().parse().unwrap_or(DEFAULT_MIB),
        Err(_) => DEFAULT_MIB,
    };
    if mib == 0 {
        return None;
    }
    let dir = match std::env::var_os(PLACE_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => super::workdir::cache_dir()?.join("cells"),
    };
    Some((dir, mib.saturating_mul(1024 * 1024)))
}

/// The evcxr commands that make cargo compile through us, with the cache in `dir`. evcxr gives
/// `:build_env` settings to its own cargo runs only, and puts its own wrapper in their place
/// when it needs one.
pub fn commands(exe: &Path, dir: &Path, limit: u64) -> String {
    format!(
        ":build_env RUSTC_WRAPPER={}\n:build_env {DIR_ENV}={}\n:build_env {LIMIT_ENV}={limit}",
        exe.display(),
        dir.display()
    )
}

/// When this process is cargo's rustc wrapper for evcxr's builds: compiles (or finds the
/// compile) and exits. Otherwise returns at once.
pub fn wrap_if_asked() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    // evcxr's own wrapper then handles this run (see the module docs).
    if std::env::var_os("EVCXR_RUSTC_WRAPPER").is_some() {
        return;
    }
    let mut args = std::env::args_os().skip(1);
    let Some(rustc) = args.next() else {
        eprintln!("kettle: run as a rustc wrapper without a compiler to run");
        std::process::exit(2);
    };
    let args: Vec<OsString> = args.collect();
    let limit = std::env::var(LIMIT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MIB * 1024 * 1024);
    let cache = Cache {
        dir: PathBuf::from(dir),
        limit,
    };
    let code = match std::env::current_dir() {
        Ok(cwd) => cache.compile(&rustc, &args, cwd),
        Err(_) => run_through(&rustc, &args),
    };
    std::process::exit(code);
}

/// The cache, in the wrapper process.
struct Cache {
    dir: PathBuf,
    limit: u64,
}

impl Cache {
    /// Runs `rustc args` in `cwd` (this process's directory, but for tests) or replays its
    /// earlier run; returns the exit code.
    fn compile(&self, rustc: &OsStr, args: &[OsString], cwd: PathBuf) -> i32 {
        let Some(invocation) = Invocation::of(rustc, args, cwd) else {
            return run_through(rustc, args);
        };
        let Ok(key) = invocation.key(&self.dir) else {
            return run_through(rustc, args);
        };
        let entries = self.dir.join(&key);
        // One variant per set of other inputs (a file, a variable): try each.
        for variant in variants(&entries) {
            if invocation.replay(&variant).is_ok() {
                return 0;
            }
        }
        // rustc's output is kept, so cargo gets it when rustc ends rather than as it comes (as
        // with evcxr's own wrapper): a cell's compile is one unit, and cargo shows its
        // diagnostics only then anyway.
        let output = match std::process::Command::new(rustc)
            .args(args)
            .current_dir(&invocation.cwd)
            .output()
        {
            Ok(output) => output,
            Err(error) => {
                eprintln!("kettle: cannot run {}: {error}", rustc.to_string_lossy());
                return 1;
            }
        };
        let _ = std::io::stdout().write_all(&output.stdout);
        let _ = std::io::stderr().write_all(&output.stderr);
        if output.status.success() {
            // A compile that cannot be kept is still a compile: errors here only cost the hit.
            // Measuring the cache reads every entry's files: done after one store in 16 (keys
            // are uniform), so the cache overshoots its limit by a few entries at most.
            if invocation.store(&entries, &output).is_ok() && key.starts_with('0') {
                let _ = evict(&self.dir, self.limit);
            }
        }
        exit_as(output.status)
    }
}

/// The exit code for rustc's `status`; a rustc killed by a signal kills us with it, so cargo
/// reports the signal as it would have.
fn exit_as(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    if let Some(signal) = status.signal() {
        // SAFETY: restoring the default action and raising a signal have no memory-safety
        // preconditions; the process ends here.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
    status.code().unwrap_or(1)
}

/// The kept variants of one key: directories named by the hash of their inputs.
fn variants(entries: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(entries) else {
        return Vec::new();
    };
    dir.flatten()
        .filter(|e| is_hex(&e.file_name().to_string_lossy(), VARIANT_LEN))
        .map(|e| e.path())
        .collect()
}

fn is_hex(name: &str, len: usize) -> bool {
    name.len() == len && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs rustc as cargo asked, and exits with its code; our process is replaced, so cargo sees
/// rustc's own output and signals.
fn run_through(rustc: &OsStr, args: &[OsString]) -> i32 {
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new(rustc).args(args).exec();
    eprintln!("kettle: cannot run {}: {error}", rustc.to_string_lossy());
    1
}

/// A compile of evcxr's cell crate, as cargo asked for it.
#[derive(Debug)]
struct Invocation<'a> {
    rustc: &'a OsStr,
    args: Vec<String>,
    /// The crate directory cargo runs rustc in: evcxr's work slot.
    cwd: PathBuf,
    crate_root: PathBuf,
    externs: Vec<PathBuf>,
}

impl<'a> Invocation<'a> {
    /// `None` unless this compiles the cell crate with outputs in a directory of their own.
    fn of(rustc: &'a OsStr, args: &[OsString], cwd: PathBuf) -> Option<Invocation<'a>> {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_str().map(str::to_owned))
            .collect::<Option<_>>()?;
        let mut crate_name = None;
        let mut out_dir = false;
        let mut crate_root = None;
        let mut externs = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--crate-name" => crate_name = iter.next().cloned(),
                "--out-dir" => out_dir = iter.next().is_some(),
                "--extern" => {
                    // `--extern proc_macro` names a crate of the compiler's own.
                    if let Some((_, path)) = iter.next()?.split_once('=') {
                        externs.push(PathBuf::from(path));
                    }
                }
                // The crate from stdin, or arguments in a file: nothing to key on.
                "-" => return None,
                other if other.starts_with('@') => return None,
                other
                    if other.ends_with(".rs")
                        && !other.starts_with('-')
                        && cwd.join(other).is_file() =>
                {
                    crate_root = Some(PathBuf::from(other));
                }
                _ => {}
            }
        }
        if crate_name.as_deref() != Some(CELL_CRATE) || !out_dir {
            return None;
        }
        Some(Invocation {
            rustc,
            args,
            cwd,
            crate_root: crate_root?,
            externs,
        })
    }

    fn crate_dir(&self) -> String {
        self.cwd.to_string_lossy().into_owned()
    }

    /// `text` with the crate directory replaced by [`CRATE_DIR_MARK`].
    fn unplace(&self, text: &str) -> String {
        text.replace(&self.crate_dir(), CRATE_DIR_MARK)
    }

    /// `text` with [`CRATE_DIR_MARK`] replaced by this compile's crate directory.
    fn place(&self, text: &str) -> String {
        text.replace(CRATE_DIR_MARK, &self.crate_dir())
    }

    /// The entry's name: a hex SHA-256 of everything the compile's output depends on that is
    /// known before it runs (see the module docs).
    fn key(&self, cache: &Path) -> std::io::Result<String> {
        let mut hash = Sha256::new();
        let mut part = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        part(FORMAT.as_bytes());
        part(self.rustc.as_encoded_bytes());
        let (size, modified) = stamp(&which(self.rustc))?;
        part(format!("{size} {modified}").as_bytes());
        for arg in &self.args {
            part(self.unplace(arg).as_bytes());
        }
        let source = std::fs::read_to_string(self.cwd.join(&self.crate_root))?;
        part(canonical_source(&source).as_bytes());
        for library in &self.externs {
            part(content_hash(cache, &self.cwd.join(library))?.as_bytes());
        }
        Ok(hex::encode(hash.finalize()))
    }

    /// Puts a variant's outputs in place and replays rustc's output; an error means a miss.
    /// A variant is never changed once written (a store with other inputs writes another), so
    /// what was checked is what is put in place; one removed meanwhile fails to read.
    fn replay(&self, entry: &Path) -> std::io::Result<()> {
        let inputs = std::fs::read_to_string(entry.join("inputs"))?;
        let env = |name: &str| std::env::var(name).ok();
        if !Inputs::parse(&inputs).hold(&self.cwd, |text| self.place(text), env) {
            return Err(std::io::Error::other("an input changed"));
        }
        let stderr = self.place(&std::fs::read_to_string(entry.join("stderr"))?);
        let stdout = std::fs::read(entry.join("stdout"))?;
        for artifact in artifacts(&stderr) {
            let name = artifact
                .file_name()
                .ok_or_else(|| std::io::Error::other("an artifact without a name"))?;
            let kept = entry.join("out").join(name);
            if is_dep_info(&artifact) {
                write_whole(
                    &artifact,
                    self.place(&std::fs::read_to_string(&kept)?).as_bytes(),
                )?;
            } else {
                copy_whole(&kept, &artifact)?;
            }
        }
        // The library's line numbers (panic locations) are those of the source it was built
        // from, which may list the same items in another order: that source goes in place.
        let source = std::fs::read(entry.join("source.rs"))?;
        write_whole(&self.cwd.join(&self.crate_root), &source)?;
        let _ = std::fs::File::options()
            .append(true)
            .open(entry.join("hits"))
            .and_then(|mut hits| hits.write_all(b"1\n"));
        std::io::stdout().write_all(&stdout)?;
        std::io::stderr().write_all(stderr.as_bytes())?;
        Ok(())
    }

    /// Keeps a successful compile in `entries` (its key's directory), as the variant for the
    /// inputs it read.
    fn store(&self, entries: &Path, output: &std::process::Output) -> std::io::Result<()> {
        let stderr = String::from_utf8(output.stderr.clone()).map_err(std::io::Error::other)?;
        let outputs = artifacts(&stderr);
        // Without the dep-info file, what else the compile read is unknown: not kept.
        if !outputs.iter().any(|path| is_dep_info(path)) {
            return Err(std::io::Error::other("rustc wrote no dep-info file"));
        }
        let partial = entries.join(format!(".part-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(partial.join("out"))?;
        let stored = (|| {
            let mut inputs = Inputs::default();
            for artifact in &outputs {
                let name = artifact
                    .file_name()
                    .ok_or_else(|| std::io::Error::other("an artifact without a name"))?;
                let kept = partial.join("out").join(name);
                if is_dep_info(artifact) {
                    let text = std::fs::read_to_string(artifact)?;
                    inputs = Inputs::of_dep_info(&text, &self.cwd, &self.crate_root)?;
                    std::fs::write(&kept, self.unplace(&text))?;
                } else {
                    std::fs::copy(artifact, &kept)?;
                }
            }
            let inputs = inputs.render(|t| self.unplace(t));
            std::fs::write(partial.join("inputs"), &inputs)?;
            std::fs::write(partial.join("stdout"), &output.stdout)?;
            std::fs::copy(self.cwd.join(&self.crate_root), partial.join("source.rs"))?;
            std::fs::write(partial.join("stderr"), self.unplace(&stderr))?;
            std::fs::write(partial.join("hits"), "")?;
            let variant = &hex::encode(Sha256::digest(inputs.as_bytes()))[..VARIANT_LEN];
            std::fs::rename(&partial, entries.join(variant))
        })();
        if stored.is_err() {
            // Also when another kernel kept the same variant first: theirs stays.
            let _ = std::fs::remove_dir_all(&partial);
        }
        stored
    }
}

/// The cell crate's source as the key sees it: its text, but not the order evcxr wrote its
/// items in.
///
/// evcxr keeps earlier cells' items and the variables in hash maps, so each kernel writes them
/// in another order: a notebook run again would never find its compiles. So the key takes the
/// source as its inner attributes, then its items as a set (each item's exact text, doc
/// comments and attributes included), then the lines between items as a set: only comments
/// and blank lines can be there, and evcxr keeps a cell's comments with the item before or
/// after them, so they move with it. Every byte counts, so any edit is a miss; only the order
/// of whole items, and of the comment lines between them, is not part of the key.
///
/// That order matters to `macro_rules!` (a macro is visible below its definition only), but
/// evcxr's own order is already arbitrary, and only compiles that succeeded are kept: a hit can
/// at most succeed where this order would not have compiled. Line numbers follow the order,
/// and [`Invocation::replay`] puts the source the library was built from in place.
///
/// The statements evcxr writes for each variable (check its type, take it from the store, put
/// it back) come in runs of one per variable, independent of each other; each run is sorted
/// first. Source that does not parse is keyed as it is.
fn canonical_source(source: &str) -> String {
    let source = sort_variable_statements(source);
    // syn recurses as deep as the code nests: on a thread with a large stack, no cell can
    // overflow the wrapper's.
    let parsed = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn({
            let source = source.clone();
            move || item_ranges(&source)
        })
        .ok()
        .and_then(|thread| thread.join().ok())
        .flatten();
    let Some((header_end, items)) = parsed else {
        return format!("raw\n{source}");
    };
    let mut texts = Vec::new();
    let mut between = String::new();
    let mut at = header_end;
    for range in items {
        between.push_str(&source[at..range.start]);
        texts.push(&source[range.clone()]);
        at = range.end;
    }
    between.push_str(&source[at..]);
    texts.sort_unstable();
    let mut lines: Vec<&str> = between.split('\n').collect();
    lines.sort_unstable();
    // Each part with its length, so no two lists of parts read the same.
    let mut key = String::from("items\n");
    let parts = std::iter::once(&source[..header_end])
        .chain(texts)
        .chain(std::iter::once("\u{0}between"))
        .chain(lines);
    for part in parts {
        key.push_str(&format!("{}:{part}", part.len()));
    }
    key
}

/// Where the inner attributes end, and each item's byte range in `source` (attributes and doc
/// comments included), in order; `None` when it does not parse (or a range does not fall on
/// characters).
fn item_ranges(source: &str) -> Option<(usize, Vec<std::ops::Range<usize>>)> {
    use syn::spanned::Spanned;
    let file = syn::parse_file(source).ok()?;
    let header_end = file
        .attrs
        .iter()
        .map(|a| a.span().byte_range().end)
        .max()
        .unwrap_or(0);
    let mut ranges: Vec<_> = file
        .items
        .iter()
        .map(|item| item.span().byte_range())
        .collect();
    ranges.sort_unstable_by_key(|r| r.start);
    let mut at = header_end;
    for range in &ranges {
        let fits = range.start >= at
            && range.end >= range.start
            && source.is_char_boundary(range.start)
            && source.get(range.clone()).is_some();
        if !fits {
            return None;
        }
        at = range.end;
    }
    source
        .is_char_boundary(header_end)
        .then_some((header_end, ranges))
}

/// `source` with each run of consecutive lines of one kind of evcxr's variable statements
/// sorted. A line counts only when its variable's name is the one it stores or takes.
fn sort_variable_statements(source: &str) -> String {
    fn kind(line: &str) -> Option<u8> {
        let name_of = |rest: &str| {
            let (_, after) = rest.split_once("(stringify!(")?;
            let (name, _) = after.split_once(')')?;
            Some(name.to_owned())
        };
        if let Some(rest) = line.strip_prefix("vars_ok &= evcxr_variable_store.check_variable::<") {
            return (rest.ends_with(");") && name_of(rest).is_some()).then_some(0);
        }
        if let Some(rest) = line.strip_prefix("let ") {
            let rest = rest.strip_prefix("mut ").unwrap_or(rest);
            let (bound, call) = rest.split_once(" = evcxr_variable_store.take_variable::<")?;
            return (call.ends_with(");") && name_of(call)? == bound).then_some(1);
        }
        if let Some(rest) = line.strip_prefix("evcxr_variable_store.put_variable::<") {
            let name = name_of(rest)?;
            return rest.ends_with(&format!("), {name});")).then_some(2);
        }
        None
    }
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let Some(k) = kind(lines[i]) else {
            out.push(lines[i]);
            i += 1;
            continue;
        };
        let end = (i..lines.len())
            .find(|&j| kind(lines[j]) != Some(k))
            .unwrap_or(lines.len());
        let mut run = lines[i..end].to_vec();
        run.sort_unstable();
        out.extend(run);
        i = end;
    }
    out.join("\n")
}

/// The files rustc says it wrote: its `{"artifact": …}` notifications on stderr.
fn artifacts(stderr: &str) -> Vec<PathBuf> {
    stderr
        .lines()
        .filter(|line| line.starts_with('{') && line.contains("\"artifact\""))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v.get("$message_type").is_none_or(|t| t == "artifact"))
        .filter_map(|v| v["artifact"].as_str().map(PathBuf::from))
        .collect()
}

fn is_dep_info(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "d")
}

/// What a compile read besides its crate root and libraries, from rustc's dep-info file:
/// files (with their contents' hash) and environment variables (with their values, or unset).
#[derive(Debug, Default, PartialEq)]
struct Inputs {
    files: Vec<(String, String)>,
    env: Vec<(String, Option<String>)>,
}

impl Inputs {
    /// Reads a dep-info file: a make rule, then one empty rule per file, then `# env-dep:`
    /// lines. Paths are relative to `cwd` or absolute; `crate_root` is in the key already.
    fn of_dep_info(text: &str, cwd: &Path, crate_root: &Path) -> std::io::Result<Inputs> {
        let mut inputs = Inputs::default();
        // The rules (one per output) come first, up to an empty line; then the inputs.
        let mut past_rules = false;
        for line in text.lines() {
            if line.is_empty() {
                past_rules = true;
            } else if !past_rules {
                continue;
            }
            if let Some(var) = line.strip_prefix("# env-dep:") {
                let (name, value) = match var.split_once('=') {
                    Some((name, value)) => (name, Some(value.to_owned())),
                    None => (var, None),
                };
                inputs.env.push((name.to_owned(), value));
            } else if let Some(path) = line.strip_suffix(':')
                && !line.starts_with('#')
            {
                let path = path.replace("\\ ", " ");
                if Path::new(&path) == crate_root {
                    continue;
                }
                let hash = hex::encode(Sha256::digest(std::fs::read(cwd.join(&path))?));
                inputs.files.push((path, hash));
            }
        }
        Ok(inputs)
    }

    /// One line per input: `file <hash> <path>`, `env <name>=<value>` or `unset <name>`.
    fn render(&self, unplace: impl Fn(&str) -> String) -> String {
        let mut text = String::new();
        for (path, hash) in &self.files {
            text.push_str(&format!("file {hash} {}\n", unplace(path)));
        }
        for (name, value) in &self.env {
            match value {
                Some(value) => text.push_str(&format!("env {name}={value}\n")),
                None => text.push_str(&format!("unset {name}\n")),
            }
        }
        text
    }

    fn parse(text: &str) -> Inputs {
        let mut inputs = Inputs::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("file ")
                && let Some((hash, path)) = rest.split_once(' ')
            {
                inputs.files.push((path.to_owned(), hash.to_owned()));
            } else if let Some(rest) = line.strip_prefix("env ")
                && let Some((name, value)) = rest.split_once('=')
            {
                inputs.env.push((name.to_owned(), Some(value.to_owned())));
            } else if let Some(name) = line.strip_prefix("unset ") {
                inputs.env.push((name.to_owned(), None));
            }
        }
        inputs
    }

    /// Whether every input is as it was, for a compile in `cwd` with environment `env`.
    fn hold(
        &self,
        cwd: &Path,
        place: impl Fn(&str) -> String,
        env: impl Fn(&str) -> Option<String>,
    ) -> bool {
        let files = self.files.iter().all(|(path, hash)| {
            std::fs::read(cwd.join(place(path)))
                .is_ok_and(|bytes| hex::encode(Sha256::digest(bytes)) == *hash)
        });
        let vars = self
            .env
            .iter()
            .all(|(name, value)| env(name).map(|v| escape_env(&v)) == *value);
        files && vars
    }
}

/// An environment value as rustc writes it into dep-info.
fn escape_env(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// The SHA-256 of a file's contents, remembered under `cache/hashes` by the file's path, size,
/// modification time and inode: a library is hashed once per build of it, not once per cell.
fn content_hash(cache: &Path, file: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file)?;
    let version = format!(
        "{} {} {} {}",
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino()
    );
    let memo = cache
        .join("hashes")
        .join(&hex::encode(Sha256::digest(file.as_os_str().as_encoded_bytes()))[..32]);
    if let Ok(text) = std::fs::read_to_string(&memo)
        && let Some((seen, hash)) = text.rsplit_once(' ')
        && seen == version
    {
        return Ok(hash.to_owned());
    }
    let hash = hex::encode(Sha256::digest(std::fs::read(file)?));
    // A file changed while it was read keeps a stale version line: the next lookup rehashes.
    let _ = write_whole(&memo, format!("{version} {hash}").as_bytes());
    Ok(hash)
}

/// The size and modification time (ns) of a file.
fn stamp(path: &Path) -> std::io::Result<(u64, u128)> {
    let meta = std::fs::metadata(path)?;
    let modified = meta
        .modified()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok((meta.len(), modified))
}

/// `program` as the system finds it: itself when it names a path, else the first match on
/// `PATH`.
fn which(program: &OsStr) -> PathBuf {
    let path = Path::new(program);
    if path.components().count() > 1 {
        return path.to_owned();
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| path.to_owned())
}

/// Removes leftovers of killed writes and old hash memos, then the least recently used
/// variants until the cache is under three quarters of `limit`, if it is over `limit`.
fn evict(cache: &Path, limit: u64) -> std::io::Result<()> {
    let older_than = |path: &Path, secs| unused_for(path, Duration::from_secs(secs));
    // A memo is rewritten only when its library changes: one a month old costs a hash again.
    for memo in std::fs::read_dir(cache.join("hashes"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if older_than(&memo.path(), 30 * 24 * 3600) {
            let _ = std::fs::remove_file(memo.path());
        }
    }
    let mut variants = Vec::new();
    let mut total = 0;
    for key in std::fs::read_dir(cache)?.flatten() {
        if !is_hex(&key.file_name().to_string_lossy(), KEY_LEN) {
            continue;
        }
        for entry in std::fs::read_dir(key.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with(".part-") {
                // What a wrapper killed mid-write (an interrupted build) left: gone after an
                // hour, long after any compile that could still be writing it.
                if older_than(&path, 3600) {
                    let _ = std::fs::remove_dir_all(&path);
                }
                continue;
            }
            let size = dir_size(&path);
            // The hit log is appended to on every hit: its time is the variant's last use.
            let used = std::fs::metadata(path.join("hits"))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            total += size;
            variants.push((used, size, path));
        }
    }
    if total <= limit {
        return Ok(());
    }
    variants.sort();
    for (_, size, path) in variants {
        if total <= limit / 4 * 3 {
            break;
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            total -= size;
            // The key's directory goes with its last variant (fails while others remain).
            if let Some(key) = path.parent() {
                let _ = std::fs::remove_dir(key);
            }
        }
    }
    Ok(())
}

fn dir_size(dir: &Path) -> u64 {
    walk_size(dir).unwrap_or(0)
}

fn walk_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            walk_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of its own under the system's temporary directory.
    fn fresh_dir(name: &str) -> PathBuf {
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "kettle-cell-cache-{name}-{}-{stamp}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A stand-in for rustc that does what the cache relies on: writes the library (the crate
    /// root's text, so a test can tell which compile it came from) and the dep-info file naming
    /// `data.txt`, announces both on stderr as rustc does, and counts its runs. A crate root
    /// containing `FAIL` fails after writing, like a compile error.
    struct FakeRustc {
        dir: PathBuf,
    }

    impl FakeRustc {
        fn new() -> FakeRustc {
            let dir = fresh_dir("rustc");
            let script = format!(
                r#"#!/bin/sh
out=""
while [ $# -gt 0 ]; do
  case "$1" in --out-dir) out="$2"; shift;; esac
  shift
done
echo run >> "{runs}"
cat src/lib.rs > "$out/libctx.so"
printf '%s: src/lib.rs data.txt\n\nsrc/lib.rs:\ndata.txt:\n' "$out/ctx.d" > "$out/ctx.d"
echo "{{\"\$message_type\":\"artifact\",\"artifact\":\"$out/ctx.d\",\"emit\":\"dep-info\"}}" >&2
echo "{{\"artifact\":\"$out/libctx.so\",\"emit\":\"link\"}}" >&2
if grep -q FAIL src/lib.rs; then exit 1; fi
"#,
                runs = dir.join("runs").display()
            );
            let path = dir.join("rustc");
            std::fs::write(&path, script).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            FakeRustc { dir }
        }

        fn path(&self) -> PathBuf {
            self.dir.join("rustc")
        }

        fn runs(&self) -> usize {
            std::fs::read_to_string(self.dir.join("runs"))
                .map(|t| t.lines().count())
                .unwrap_or(0)
        }
    }

    /// A crate directory as evcxr's slot has it, with a dependency library.
    fn slot(name: &str, code: &str) -> PathBuf {
        let dir = fresh_dir(name);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::create_dir_all(dir.join("target/deps")).unwrap();
        std::fs::write(dir.join("src/lib.rs"), code).unwrap();
        std::fs::write(dir.join("data.txt"), "data").unwrap();
        std::fs::write(dir.join("target/deps/libdep.rlib"), "dep version 1").unwrap();
        dir
    }

    /// cargo's arguments for the cell crate in `slot` (the parts the cache reads).
    fn cell_args(slot: &Path) -> Vec<OsString> {
        let deps = slot.join("target/deps");
        [
            "--crate-name".to_owned(),
            "ctx".to_owned(),
            "src/lib.rs".to_owned(),
            "--crate-type".to_owned(),
            "cdylib".to_owned(),
            "--out-dir".to_owned(),
            deps.display().to_string(),
            "-C".to_owned(),
            format!("incremental={}/target/incremental", slot.display()),
            "--extern".to_owned(),
            format!("dep={}/libdep.rlib", deps.display()),
            "--extern".to_owned(),
            "proc_macro".to_owned(),
        ]
        .map(OsString::from)
        .to_vec()
    }

    fn library(slot: &Path) -> String {
        std::fs::read_to_string(slot.join("target/deps/libctx.so")).unwrap()
    }

    fn compile(cache: &Cache, rustc: &FakeRustc, slot: &Path) -> i32 {
        cache.compile(rustc.path().as_os_str(), &cell_args(slot), slot.to_owned())
    }

    /// A fresh cache, stand-in rustc and slot holding `code`, after one compile there.
    fn compiled_once(name: &str, code: &str) -> (Cache, FakeRustc, PathBuf) {
        let (cache, rustc, slot) = (cache(), FakeRustc::new(), slot(name, code));
        assert_eq!(compile(&cache, &rustc, &slot), 0);
        assert_eq!(rustc.runs(), 1);
        (cache, rustc, slot)
    }

    fn cache() -> Cache {
        Cache {
            dir: fresh_dir("cache"),
            limit: 1 << 30,
        }
    }

    #[test]
    fn the_same_compile_again_puts_the_kept_outputs_in_place_without_rustc() {
        let (cache, rustc, slot) = compiled_once("same", "fn one() {}");
        std::fs::remove_file(slot.join("target/deps/libctx.so")).unwrap();
        std::fs::remove_file(slot.join("target/deps/ctx.d")).unwrap();

        assert_eq!(compile(&cache, &rustc, &slot), 0);
        assert_eq!(rustc.runs(), 1, "the second compile was a hit");
        assert_eq!(library(&slot), "fn one() {}");
        let dep_info = std::fs::read_to_string(slot.join("target/deps/ctx.d")).unwrap();
        assert!(dep_info.starts_with(&format!("{}/target/deps/ctx.d:", slot.display())));
    }

    #[test]
    fn a_compile_in_another_crate_directory_finds_the_entry_and_gets_its_own_paths() {
        let (cache, rustc) = (cache(), FakeRustc::new());
        let first = slot("first", "fn two() {}");
        let second = slot("second", "fn two() {}");
        assert_eq!(compile(&cache, &rustc, &first), 0);
        assert_eq!(compile(&cache, &rustc, &second), 0);
        assert_eq!(rustc.runs(), 1);
        assert_eq!(library(&second), "fn two() {}");
        let dep_info = std::fs::read_to_string(second.join("target/deps/ctx.d")).unwrap();
        assert!(
            dep_info.starts_with(&format!("{}/target/deps/ctx.d:", second.display())),
            "{dep_info}"
        );
        assert!(!dep_info.contains(CRATE_DIR_MARK));
    }

    /// Writes `text` to `file` in `slot`, compiles there, and returns how often rustc has run.
    fn write_and_compile(
        (cache, rustc, slot): (&Cache, &FakeRustc, &Path),
        file: &str,
        text: &str,
    ) -> usize {
        std::fs::write(slot.join(file), text).unwrap();
        assert_eq!(compile(cache, rustc, slot), 0);
        rustc.runs()
    }

    #[test]
    fn changed_code_a_rebuilt_library_or_a_changed_input_file_compiles_again() {
        let (cache, rustc, slot) = compiled_once("changes", "fn three() {}");
        let at = (&cache, &rustc, slot.as_path());

        assert_eq!(
            write_and_compile(at, "src/lib.rs", "fn three() { 3 }"),
            2,
            "new code"
        );
        assert_eq!(library(&slot), "fn three() { 3 }");
        // Same file name and size, new contents: a path crate rebuilt from changed source.
        let rebuilt = write_and_compile(at, "target/deps/libdep.rlib", "dep version 2");
        assert_eq!(rebuilt, 3, "rebuilt dependency");
        let included = write_and_compile(at, "data.txt", "other");
        assert_eq!(included, 4, "changed include_str! file");

        // And each of those is a hit the next time.
        assert_eq!(compile(&cache, &rustc, &slot), 0);
        assert_eq!(rustc.runs(), 4);
    }

    #[test]
    fn compiles_that_read_different_files_keep_a_variant_each() {
        let (cache, rustc, slot) = compiled_once("variants", "fn four() {}");
        let at = (&cache, &rustc, slot.as_path());
        assert_eq!(write_and_compile(at, "data.txt", "other"), 2);
        // Back to the first contents: its variant is still there.
        assert_eq!(write_and_compile(at, "data.txt", "data"), 2);
        assert_eq!(variants(&cache.dir.join(only_key(&cache.dir))).len(), 2);
    }

    /// The one key directory in `cache`.
    fn only_key(cache: &Path) -> String {
        let keys: Vec<String> = std::fs::read_dir(cache)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| is_hex(name, KEY_LEN))
            .collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
        keys[0].clone()
    }

    #[test]
    fn a_failed_compile_is_not_kept() {
        let (cache, rustc) = (cache(), FakeRustc::new());
        let slot = slot("fails", "FAIL");
        assert_eq!(compile(&cache, &rustc, &slot), 1);
        assert_eq!(compile(&cache, &rustc, &slot), 1);
        assert_eq!(rustc.runs(), 2);
    }

    #[test]
    fn only_the_cell_crate_with_plain_arguments_is_looked_up() {
        let cwd = slot("plain", "fn five() {}");
        let of = |line: &str| {
            let args: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
            Invocation::of(OsStr::new("rustc"), &args, cwd.clone())
        };
        assert!(of("--crate-name ctx src/lib.rs --out-dir /slot/t").is_some());
        assert!(of("--crate-name tokio src/lib.rs --out-dir /slot/t").is_none());
        assert!(of("-vV").is_none());
        assert!(of("--crate-name ctx @/tmp/args --out-dir /slot/t").is_none());
        // An argument ending in `.rs` that is no file is not the crate root.
        let cell = of("--crate-name ctx src/lib.rs -C x.rs --out-dir /t").unwrap();
        assert_eq!(cell.crate_root, Path::new("src/lib.rs"));
    }

    #[test]
    fn dep_info_inputs_are_read_and_checked() {
        let dir = fresh_dir("inputs");
        std::fs::write(dir.join("my data.txt"), "x").unwrap();
        let text = "/out/ctx.d: src/lib.rs my\\ data.txt\n\nsrc/lib.rs:\nmy\\ data.txt:\n\n\
                    # env-dep:GREETING=hello\\nworld\n# env-dep:ABSENT\n";
        let inputs = Inputs::of_dep_info(text, &dir, Path::new("src/lib.rs")).unwrap();
        assert_eq!(inputs.files.len(), 1);
        assert_eq!(inputs.files[0].0, "my data.txt");
        assert_eq!(Inputs::parse(&inputs.render(str::to_owned)), inputs);

        let same = |name: &str| (name == "GREETING").then(|| "hello\nworld".to_owned());
        assert!(inputs.hold(&dir, str::to_owned, same));
        let other = |name: &str| (name == "GREETING").then(|| "bye".to_owned());
        assert!(!inputs.hold(&dir, str::to_owned, other));
        let set = |_: &str| Some("hello\nworld".to_owned());
        assert!(!inputs.hold(&dir, str::to_owned, set), "ABSENT is now set");
        std::fs::write(dir.join("my data.txt"), "y").unwrap();
        assert!(!inputs.hold(&dir, str::to_owned, same));
    }

    #[test]
    fn the_least_recently_used_entries_go_when_the_cache_is_over_its_limit() {
        let cache = fresh_dir("evict");
        let entry = |n: u8, size: usize| {
            let path = cache.join(hex::encode([n; 32])).join(hex::encode([n; 8]));
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join("out"), vec![0; size]).unwrap();
            std::fs::write(path.join("hits"), "").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            path
        };
        let (old, middle, new) = (entry(1, 400), entry(2, 400), entry(3, 400));
        evict(&cache, 2000).unwrap();
        assert!(
            old.exists() && middle.exists() && new.exists(),
            "under the limit"
        );
        // A hit makes the oldest the most recently used.
        std::fs::write(old.join("hits"), "1\n").unwrap();
        evict(&cache, 1100).unwrap();
        assert!(!middle.exists(), "least recently used");
        assert!(
            !middle.parent().unwrap().exists(),
            "with its key, now empty"
        );
        assert!(old.exists() && new.exists());
    }

    /// A cell crate as evcxr writes it: `items` in the given order, then the cell's function
    /// with the variables' statements in the given order around `body`.
    fn evcxr_source(items: &[&str], vars: &[&str], body: &str) -> String {
        let mut text = String::from("#![allow(unused_imports)]\n");
        for item in items {
            text.push_str(item);
            text.push('\n');
        }
        text.push_str(concat!(
            "#[unsafe(no_mangle)]\npub extern \"C\" fn run_user_code_3(\n",
            "mut evcxr_variable_store: *mut Store) -> *mut Store {\n",
            "{let mut vars_ok = true;\n"
        ));
        for v in vars {
            text.push_str(&format!(
                "vars_ok &= evcxr_variable_store.check_variable::<i32>(stringify!({v}));\n"
            ));
        }
        text.push_str("}\n");
        for v in vars {
            text.push_str(&format!(
                "let mut {v} = evcxr_variable_store.take_variable::<i32>(stringify!({v}));\n"
            ));
        }
        text.push_str(body);
        for v in vars {
            text.push_str(&format!(
                "evcxr_variable_store.put_variable::<i32>(stringify!({v}), {v});\n"
            ));
        }
        text.push_str("evcxr_variable_store\n}\n");
        text
    }

    #[test]
    fn the_key_reads_items_and_variables_in_any_order_but_statements_in_theirs() {
        let (f, g) = ("fn f() -> i32 { 1 }", "struct G {\n    x: i32,\n}");
        let body = "a += 1;\nb = a;\n";
        let one = evcxr_source(&[f, g], &["a", "b"], body);
        let other = evcxr_source(&[g, f], &["b", "a"], body);
        assert_ne!(one, other);
        assert_eq!(canonical_source(&one), canonical_source(&other));

        let swapped = evcxr_source(&[f, g], &["a", "b"], "b = a;\na += 1;\n");
        assert_ne!(canonical_source(&one), canonical_source(&swapped));
        // Every byte counts: spacing (`stringify!`) and comments.
        let spaced = evcxr_source(&["fn f() -> i32 {  1 }", g], &["a", "b"], body);
        assert_ne!(canonical_source(&one), canonical_source(&spaced));
        let commented = evcxr_source(&["// one\nfn f() -> i32 { 1 }", g], &["a", "b"], body);
        assert_ne!(canonical_source(&one), canonical_source(&commented));
        let inside = evcxr_source(&["fn f() -> i32 { /* x */ 1 }", g], &["a", "b"], body);
        assert_ne!(canonical_source(&one), canonical_source(&inside));
        // evcxr keeps a comment before a cell's statement at the end of the item before it:
        // it moves with that item.
        let trailing = "fn f() -> i32 { 1 }\n\n// then the loop";
        let first = evcxr_source(&["// one\nstruct H;", trailing, g], &["a"], body);
        let then = evcxr_source(&[g, trailing, "// one\nstruct H;"], &["a"], body);
        assert_eq!(canonical_source(&first), canonical_source(&then));
        let changed = evcxr_source(&["fn f() -> i32 { 2 }", g], &["a", "b"], body);
        assert_ne!(canonical_source(&one), canonical_source(&changed));
        // Source that does not parse is taken as it is.
        assert_eq!(canonical_source("fn ("), "raw\nfn (");
    }

    #[test]
    fn a_hit_for_items_in_another_order_puts_the_compiled_source_in_place() {
        let (f, g) = ("fn f() {}", "fn g() {}");
        let source = evcxr_source(&[f, g], &["a", "b"], "");
        let (cache, rustc, slot) = compiled_once("order", &source);
        let compiled = library(&slot);

        let reordered = evcxr_source(&[g, f], &["b", "a"], "");
        std::fs::write(slot.join("src/lib.rs"), &reordered).unwrap();
        assert_eq!(compile(&cache, &rustc, &slot), 0);
        assert_eq!(rustc.runs(), 1);
        // The kernel reads the source to name a panic's line: it must be the library's.
        let source = std::fs::read_to_string(slot.join("src/lib.rs")).unwrap();
        assert_eq!(source, compiled);
    }
}
