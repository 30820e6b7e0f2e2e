use sealback_core::recovery::{RecoveryKey, RecoveryKeyError, DIGITS};

fn digits(k: &RecoveryKey) -> Vec<u8> {
    k.to_secret().expose_secret().to_vec()
}

#[test]
fn every_single_wrong_digit_and_neighbour_swap_is_caught() {
    for seed in 0..4 {
        let key = RecoveryKey::generate(&mut crate::rng(seed));
        let d = digits(&key);
        assert_eq!(d.len(), DIGITS);
        for pos in 0..DIGITS {
            for replacement in b'0'..=b'9' {
                if replacement == d[pos] {
                    continue;
                }
                let mut typo = d.clone();
                typo[pos] = replacement;
                assert_eq!(
                    RecoveryKey::parse(std::str::from_utf8(&typo).unwrap()),
                    Err(RecoveryKeyError::Checksum)
                );
            }
        }
        for pos in 0..DIGITS - 1 {
            if d[pos] == d[pos + 1] {
                continue;
            }
            let mut swapped = d.clone();
            swapped.swap(pos, pos + 1);
            assert_eq!(
                RecoveryKey::parse(std::str::from_utf8(&swapped).unwrap()),
                Err(RecoveryKeyError::Checksum)
            );
        }
    }
}

#[test]
fn display_parses_back_and_debug_is_redacted() {
    let key = RecoveryKey::generate(&mut crate::rng(1));
    let shown = key.display_groups();
    assert_eq!(shown.split(' ').count(), 16);
    assert!(shown.split(' ').all(|g| g.len() == 4));
    assert_eq!(RecoveryKey::parse(&shown).unwrap(), key);
    assert_eq!(RecoveryKey::parse(&shown.replace(' ', "\n")).unwrap(), key);
    let dbg = format!("{key:?}");
    assert!(!dbg.contains(&shown[..4]) || dbg == "RecoveryKey(<redacted>)");
    assert_eq!(dbg, "RecoveryKey(<redacted>)");
}

#[test]
fn generated_digits_are_roughly_uniform() {
    let mut counts = [0u32; 10];
    let mut rng = crate::rng(2);
    for _ in 0..500 {
        for &d in &digits(&RecoveryKey::generate(&mut rng))[..63] {
            counts[(d - b'0') as usize] += 1;
        }
    }
    // 31,500 digits: each count is 3,150 ± about 4.5 standard deviations.
    for c in counts {
        assert!((2900..3400).contains(&c), "{counts:?}");
    }
}
