//! The writer's content-list cut (SPEC §11) against `tests/vectors/content_list_file.json`.

use sealback_core::Id;
use sealback_engine::backup::split_content_list;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn content_lists_are_cut_as_the_vector_says() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/content_list_file.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ids: Vec<Id> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| Id(unhex(d["id"].as_str().unwrap()).try_into().unwrap()))
        .collect();
    let bodies: Vec<Vec<u8>> = split_content_list(&ids)
        .iter()
        .map(|group| group.iter().flat_map(|id| id.0).collect())
        .collect();
    let expected: Vec<Vec<u8>> = v["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| unhex(l["body"].as_str().unwrap()))
        .collect();
    assert!(expected.len() > 1, "the vector has a cut");
    assert_eq!(bodies, expected);
}
