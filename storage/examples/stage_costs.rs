//! CPU nanoseconds per byte of each stage a one-stream write runs (`davit_storage::costs`),
//! on one core, for the benchmarks to turn into a ceiling on what two cores can reach.
//! Prints `cut copy keyed_hash seal md5` on one line. Usage: stage_costs [MIB=256] [ROUNDS=3]

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let mib = args.next().flatten().unwrap_or(256);
    let rounds = args.next().flatten().unwrap_or(3);
    let c = davit_storage::costs::measure(mib, rounds);
    println!("{:.3} {:.3} {:.3} {:.3} {:.3}", c.cut, c.copy, c.keyed_hash, c.seal, c.md5);
}
