//! Tidy checks: documentation that must match the code.

#[test]
fn schema_documents_exactly_the_column_families() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/rocksdb.md")).unwrap();
    let mut documented: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(str::trim)
        .collect();
    let mut actual = ao_su::store::cf::ALL.to_vec();
    documented.sort_unstable();
    actual.sort_unstable();
    assert_eq!(
        documented, actual,
        "schema/rocksdb.md headings must equal store::cf::ALL"
    );
}

#[test]
fn every_source_file_starts_with_a_module_comment() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out)
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path)
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must start with a //! comment",
            file.display()
        );
    }
}
