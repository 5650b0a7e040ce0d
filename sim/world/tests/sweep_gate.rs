//! The CI gate of the seed sweep: the committed swarm seeds (`sim/seeds/ci-swarm.txt`), each on
//! the scenario it rotates to, must pass the safety and liveness oracles. The nightly sweep
//! tries fresh seeds; any failure it finds is added to that file.

use cloudproxy_sim::scenario::catalogue;

fn seeds() -> Vec<u64> {
    include_str!("../../seeds/ci-swarm.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.parse()
                .unwrap_or_else(|e| panic!("bad seed line {l:?}: {e}"))
        })
        .collect()
}

#[test]
fn committed_swarm_seeds_pass() {
    let seeds = seeds();
    assert!(
        seeds.len() >= catalogue().len(),
        "the gate covers every scenario"
    );
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = seeds
            .chunks(seeds.len().div_ceil(2))
            .map(|chunk| {
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    for &seed in chunk {
                        let scenario = &catalogue()[(seed % catalogue().len() as u64) as usize];
                        let (result, kinds) = scenario.run_swarm(seed);
                        if !result.passed() {
                            let checks: Vec<String> =
                                result.checks.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.name, c.detail)).collect();
                            failed.push(format!(
                                "{} seed {seed} (faults {kinds:?}, schedule {:?}):\n    {}\n    reproduce: {}",
                                result.name,
                                result.outcome.faults_applied,
                                checks.join("\n    "),
                                result.reproduce()
                            ));
                        }
                    }
                    failed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a sweep thread"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
