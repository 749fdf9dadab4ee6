//! Learning-rate schedules as small pure functions.

/// Linear warm-up from 0 to `base_lr` over `warmup_steps`, then cosine decay to `min_lr` at
/// `total_steps` (Goyal et al. 2017 warm-up; Loshchilov & Hutter 2017 cosine, without restarts).
///
/// `step` counts from 0; the first step already gets `base_lr / warmup_steps`, so no step is
/// wasted at a zero learning rate.
pub fn warmup_cosine(
    step: usize,
    total_steps: usize,
    warmup_steps: usize,
    base_lr: f64,
    min_lr: f64,
) -> f64 {
    if step < warmup_steps {
        return base_lr * (step + 1) as f64 / warmup_steps as f64;
    }
    let decay_steps = total_steps.saturating_sub(warmup_steps).max(1);
    let progress = ((step - warmup_steps) as f64 / decay_steps as f64).min(1.0);
    min_lr + 0.5 * (base_lr - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_decays_to_the_floor() {
        let lr = |s| warmup_cosine(s, 110, 10, 1.0, 0.01);
        assert!((lr(0) - 0.1).abs() < 1e-12);
        assert!((lr(4) - 0.5).abs() < 1e-12);
        assert!((lr(9) - 1.0).abs() < 1e-12);
        assert!((lr(10) - 1.0).abs() < 1e-12);
        // Half-way through the decay the cosine is at its midpoint.
        assert!((lr(60) - (0.01 + 0.5 * 0.99)).abs() < 1e-12);
        assert!((lr(110) - 0.01).abs() < 1e-12);
        assert!((lr(500) - 0.01).abs() < 1e-12);
        for s in 10..110 {
            assert!(lr(s + 1) <= lr(s), "not decreasing at {s}");
        }
    }

    #[test]
    fn no_warmup_starts_at_base() {
        assert!((warmup_cosine(0, 100, 0, 0.3, 0.0) - 0.3).abs() < 1e-12);
    }
}
