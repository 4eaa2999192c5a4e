fn main() {
    println!("vmcore-report {}", env!("CARGO_PKG_VERSION"));
}
