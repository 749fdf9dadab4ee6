//! Checkpoint files (`repr_train::checkpoint_file`): arbitrary bytes must decode to an error or
//! to sections inside the input, never panic or allocate; and a checkpoint built from the
//! input's bytes must decode to the same sections, and to an error naming a section (or the
//! magic) once any one of its bytes is changed (but for a version digit changed to `1`, which
//! reads as a version-1 file, unverified).
#![no_main]

use libfuzzer_sys::fuzz_target;
use repr_fuzz::checkpoint_file::{FormatError, decode, encode, peek_state};

fuzz_target!(|data: &[u8]| {
    // Any bytes.
    if let Ok(sections) = decode(data) {
        let total = sections.state.len() + sections.model.len() + sections.optimizer.len();
        assert!(total <= data.len());
    }
    let _ = peek_state(data);

    // A well-formed file made of the input: the first two bytes split the rest into three
    // sections, the next four pick the byte to change and how.
    let Some((head, rest)) = data.split_first_chunk::<6>() else {
        return;
    };
    let cut1 = (head[0] as usize).min(rest.len());
    let cut2 = (cut1 + head[1] as usize).min(rest.len());
    let (state, model, optimizer) = (&rest[..cut1], &rest[cut1..cut2], &rest[cut2..]);
    let file = encode(state, model, optimizer);
    let sections = decode(&file).expect("a file just encoded decodes");
    assert!(sections.verified);
    assert_eq!(
        (sections.state, sections.model, sections.optimizer),
        (state, model, optimizer)
    );
    assert_eq!(peek_state(&file), Some(state));

    let at = u16::from_le_bytes([head[2], head[3]]) as usize % file.len();
    let flip = head[4].max(1);
    let mut damaged = file.clone();
    damaged[at] ^= flip;
    match decode(&damaged) {
        // The version digit turned into version 1's: read as an old, unverifiable file.
        Ok(old) if at == 8 && damaged[8] == b'1' => assert!(!old.verified),
        Ok(_) => panic!("byte {at} changed by {flip:#x} went unnoticed"),
        Err(FormatError::BadMagic) => assert!(at < 10, "bad magic reported for byte {at}"),
        Err(error) => assert!(error.section().is_some(), "{error}"),
    }
    // A truncated file is an error too.
    let cut = u16::from_le_bytes([head[5], head[2]]) as usize % file.len();
    assert!(decode(&file[..cut]).is_err());
});
