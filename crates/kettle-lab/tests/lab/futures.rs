//! Notebook 03 ("Futures") without Jupyter: every Rust cell of `notebooks/03-futures.ipynb`
//! lives here, between `// [cell ID]` and `// [end]`, and runs as an ordinary test (see
//! `threads.rs` for how the regions become cells).

// [cell setup]
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use kettle_lab::*;
use kettle_timing::Compare;
// [end]

#[test]
fn c12_find_files_with_futures_and_alternatives() {
    // [cell C12-find-files]
    /// What one call of `find_files` learned about one directory.
    #[derive(Debug)]
    struct Listing {
        /// Full paths that contain the query.
        matches: Vec<PathBuf>,
        /// Subdirectories to visit next; symlinks are left out, so a link back up cannot loop.
        subdirs: Vec<PathBuf>,
    }

    /// The book's `find_files`: list one directory, keep the paths containing `query`, return
    /// the subdirectories that are not symlinks. Names are matched as text, so a name that is
    /// not UTF-8 is an error here, like a directory we may not read.
    fn find_files(path: &Path, query: &str) -> io::Result<Listing> {
        let trouble = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let mut listing = Listing {
            matches: Vec::new(),
            subdirs: Vec::new(),
        };
        for entry in std::fs::read_dir(path).map_err(trouble)? {
            let entry = entry.map_err(trouble)?;
            let full = entry.path();
            let Some(text) = full.to_str() else {
                let name = entry.file_name();
                return Err(trouble(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("file name {name:?} is not UTF-8"),
                )));
            };
            if text.contains(query) {
                listing.matches.push(full.clone());
            }
            // `file_type` does not follow symlinks: `is_dir()` is false for `d0/loop`.
            if entry.file_type().map_err(trouble)?.is_dir() {
                listing.subdirs.push(full);
            }
        }
        Ok(listing)
    }

    let tree = Tree::book().expect("a temp dir"); // 1,555 directories, 15,550 files
    let basedir = tree.root();
    println!(
        "a tree of {} directories and {} files at {}",
        tree.dirs(),
        tree.files(),
        basedir.display()
    );
    // [end]

    // [cell C12]
    let query = ".py";
    let start = Instant::now();
    let executor = ThreadPool::new(10); // ThreadPoolExecutor(max_workers=10)
    let mut futures = VecDeque::new();
    let root = basedir.clone();
    futures.push_back(executor.submit(move || find_files(&root, query)));
    let (mut found, mut errors, mut requeued) = (Vec::new(), Vec::new(), 0);
    while let Some(future) = futures.pop_front() {
        if let Some(e) = future.exception() {
            errors.push(e.to_string()); // usually a permission error
        } else if future.done() {
            let listing = future.get().expect("no panic").expect("no error");
            found.extend(listing.matches);
            for subdir in listing.subdirs {
                futures.push_back(executor.submit(move || find_files(&subdir, query)));
            }
        } else {
            requeued += 1; // never happens: exception() waits for the job, as in Python
            futures.push_back(future);
        }
    }
    let pooled = start.elapsed().as_secs_f64();

    // Ten threads finish in a different order every run: sort, and print paths below the root.
    found.sort();
    errors.sort();
    for path in found.iter().take(5) {
        println!("{}", path.strip_prefix(&basedir).unwrap_or(path).display());
    }
    println!(
        "... {} paths containing {query:?} in {pooled:.3} seconds (re-queued: {requeued})",
        found.len()
    );
    for e in &errors {
        println!(
            "skipped: {}",
            e.replace(basedir.to_str().unwrap(), "<tree>")
        );
    }
    // [end]
    assert_eq!(found, tree.expected_matches(query));
    assert_eq!(requeued, 0);
    let locked_fails = !tree.locked_is_readable();
    assert_eq!(errors.len(), 1 + usize::from(locked_fails), "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("latin1") && e.contains("not UTF-8"))
    );

    // [cell C12-alternatives]
    /// The same walk one directory after another, no threads: the baseline.
    fn find_sequential(root: &Path, query: &str) -> (Vec<PathBuf>, usize) {
        let (mut found, mut errors) = (Vec::new(), 0);
        let mut todo = VecDeque::from([root.to_owned()]);
        while let Some(dir) = todo.pop_front() {
            match find_files(&dir, query) {
                Ok(listing) => {
                    found.extend(listing.matches);
                    todo.extend(listing.subdirs);
                }
                Err(_) => errors += 1,
            }
        }
        (found, errors)
    }

    /// With rayon: each directory spawns a task per subdirectory inside one `scope`, which
    /// returns when all of them are done. No futures to poll; results come back on a channel.
    fn find_rayon(root: &Path, query: &str) -> (Vec<PathBuf>, usize) {
        fn visit<'s>(
            s: &rayon::Scope<'s>,
            dir: PathBuf,
            query: &'s str,
            out: mpsc::Sender<io::Result<Vec<PathBuf>>>,
        ) {
            match find_files(&dir, query) {
                Ok(listing) => {
                    for subdir in listing.subdirs {
                        let out = out.clone();
                        s.spawn(move |s| visit(s, subdir, query, out));
                    }
                    let _ = out.send(Ok(listing.matches));
                }
                Err(e) => {
                    let _ = out.send(Err(e));
                }
            }
        }
        let (sender, results) = mpsc::channel();
        rayon::scope(|s| visit(s, root.to_owned(), query, sender));
        let (mut found, mut errors) = (Vec::new(), 0);
        for result in results {
            match result {
                Ok(matches) => found.extend(matches),
                Err(_) => errors += 1,
            }
        }
        (found, errors)
    }

    /// With tokio: every listing runs on the blocking-thread pool (`spawn_blocking`, the
    /// `run_in_executor` of Rust), and a `JoinSet` hands back whichever finishes first.
    fn find_tokio(root: &Path, query: &'static str) -> (Vec<PathBuf>, usize) {
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        runtime.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            let root = root.to_owned();
            set.spawn_blocking(move || find_files(&root, query));
            let (mut found, mut errors) = (Vec::new(), 0);
            while let Some(joined) = set.join_next().await {
                match joined.expect("no panic") {
                    Ok(listing) => {
                        found.extend(listing.matches);
                        for subdir in listing.subdirs {
                            set.spawn_blocking(move || find_files(&subdir, query));
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (found, errors)
        })
    }

    /// The pool-and-futures walk of the cell above, as a function.
    fn find_pool(root: &Path, query: &'static str, workers: usize) -> (Vec<PathBuf>, usize) {
        let executor = ThreadPool::new(workers);
        let root = root.to_owned();
        let mut futures = VecDeque::from([executor.submit(move || find_files(&root, query))]);
        let (mut found, mut errors) = (Vec::new(), 0);
        while let Some(future) = futures.pop_front() {
            match future.get() {
                Ok(Ok(listing)) => {
                    found.extend(listing.matches);
                    for subdir in listing.subdirs {
                        futures.push_back(executor.submit(move || find_files(&subdir, query)));
                    }
                }
                _ => errors += 1,
            }
        }
        (found, errors)
    }

    for (name, (mut paths, errors)) in [
        ("sequential", find_sequential(&basedir, query)),
        ("pool of 10", find_pool(&basedir, query, 10)),
        ("rayon scope", find_rayon(&basedir, query)),
        ("tokio spawn_blocking", find_tokio(&basedir, query)),
    ] {
        paths.sort();
        println!(
            "{name:>20}: {} paths, {errors} skipped, same as above: {}",
            paths.len(),
            paths == found
        );
    }
    // [end]
    for (mut paths, errors) in [
        find_sequential(&basedir, query),
        find_pool(&basedir, query, 10),
        find_rayon(&basedir, query),
        find_tokio(&basedir, query),
    ] {
        paths.sort();
        assert_eq!(paths, found);
        assert_eq!(errors, errors_expected(&tree));
    }

    // [cell C12-compare]
    let result = Compare::new(format!("find_files over {} directories", tree.dirs()))
        .runs(5)
        .variant("sequential", || find_sequential(&basedir, query))
        .variant("pool of 10 + futures", || find_pool(&basedir, query, 10))
        .variant("rayon scope", || find_rayon(&basedir, query))
        .variant("tokio spawn_blocking", || find_tokio(&basedir, query))
        .run();
    println!(
        "the pool takes {:.2}× the sequential time (medians), {:.2}× (best runs); \
         Python: 0.509 s vs 0.214 s, 2.4× slower",
        1.0 / result.speedup(1),
        1.0 / result.best_speedup(1)
    );
    // [end]
}

fn errors_expected(tree: &Tree) -> usize {
    1 + usize::from(!tree.locked_is_readable())
}
