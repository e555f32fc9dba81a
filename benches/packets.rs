//! AutoMerge throughput and memory: for N loads (env `PACKETS_N`, default 1000) render the
//! invoice, check the three documents, merge them and write the packet durably (temp name,
//! fsync, rename: `files::write_atomically`), as the invoicing job does. Reports packets/s,
//! time per phase, and resident memory after 100 and after N packets (to show it does not
//! grow) and at its peak. If `qpdf` is installed, also times `qpdf --empty --pages inv.pdf
//! rc.pdf pod.pdf -- out.pdf` (one process per packet, as a shell-out would) for comparison.
//!
//! Inputs are generated here: a two-page text rate confirmation and a one-page POD holding a
//! ~200 KB grayscale JPEG scan. Run with `cargo bench --bench packets`.

#[path = "../tests/common/pdfs.rs"]
#[allow(dead_code, reason = "shared test helpers: each test binary uses a part of them")]
mod pdfs;

use std::error::Error;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use factord::domain::Money;
use factord::files::write_atomically;
use factord::invoicing::content::InvoiceContent;
use factord::invoicing::packet::{check_document, merge_packet, page_count};
use factord::invoicing::render::render_invoice;

/// Packets compared against qpdf (each one a process start).
const QPDF_PACKETS: usize = 100;
/// Packet names rotate over this many files, so the benchmark does not fill the disk.
const OUTPUT_SLOTS: usize = 100;

fn content(index: usize) -> InvoiceContent {
    InvoiceContent {
        seller_name: "Blue Ridge Haulage LLC".to_string(),
        seller_address: "1200 Industrial Pkwy\nDalton, GA 30721".to_string(),
        seller_mc: Some("884213".to_string()),
        seller_usdot: Some("3021457".to_string()),
        customer_id: format!("C-{}", index % 37),
        customer_name: "Apex Freight Brokerage Inc".to_string(),
        customer_mc: Some("551002".to_string()),
        invoice_number: format!("BRH-2025-{index:06}"),
        invoice_date: chrono::NaiveDate::from_ymd_opt(2025, 3, 5).unwrap_or_default(),
        load_number: format!("L-{:06}", 20_000 + index),
        po_number: Some(format!("PO-{}", 70_000 + index)),
        pickup: Some("Dallas, TX".to_string()),
        delivery: Some("Atlanta, GA".to_string()),
        delivered: Some("2025-03-03T14:20:00-06:00".to_string()),
        bill_to_name: None,
        bill_to_address: None,
        terms_days: 30,
        bol_number: None,
        picked_up: None,
        shipper: None,
        consignee: None,
        lines: Vec::new(),
        remit_to_factor: None,
        amount: Money::from_cents(245_000 + i64::try_from(index).unwrap_or(0)),
        noa: Some(
            "NOTICE: This account has been assigned and must be paid only to Example Factor LLC, \
             PO Box 610028, Dallas, TX 75261-0028. Payment to any other party will not discharge \
             your obligation. Notify Example Factor LLC at once of any claim or offset."
                .to_string(),
        ),
    }
}

/// A line of /proc/self/status in MiB (`VmRSS`, `VmHWM`), or 0 off Linux.
fn memory_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
}

fn millis(total: Duration, count: usize) -> f64 {
    total.as_secs_f64() * 1000.0 / count.max(1) as f64
}

fn main() -> Result<(), Box<dyn Error>> {
    let n: usize = match std::env::var("PACKETS_N") {
        Ok(text) => text.parse()?,
        Err(_) => 1000,
    };
    let temp = tempfile::tempdir()?;
    let documents = temp.path().join("documents");
    let packets = temp.path().join("packets");
    std::fs::create_dir_all(&documents)?;

    let rc_path = documents.join("rc.pdf");
    let pod_path = documents.join("pod.pdf");
    let jpeg = pdfs::scanned_jpeg(1275, 1650, 42);
    std::fs::write(&rc_path, pdfs::rate_confirmation("L-BENCH", 2))?;
    std::fs::write(&pod_path, pdfs::pod_with_jpeg("L-BENCH", &jpeg))?;
    let size_kb = |path: &Path| std::fs::metadata(path).map(|m| m.len() as f64 / 1024.0).unwrap_or(0.0);
    println!(
        "inputs: rate confirmation 2 pages {:.0} KB; POD 1 page {:.0} KB (JPEG {:.0} KB)",
        size_kb(&rc_path),
        size_kb(&pod_path),
        jpeg.len() as f64 / 1024.0
    );
    let rss_start = memory_mib("VmRSS");

    let (mut render, mut check, mut merge, mut write) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut rss_after_100 = None;
    let mut packet_bytes = 0usize;
    let started = Instant::now();
    for index in 0..n {
        let t = Instant::now();
        let invoice = render_invoice(&content(index))?;
        render += t.elapsed();

        let t = Instant::now();
        let rc = std::fs::read(&rc_path)?;
        let pod = std::fs::read(&pod_path)?;
        let parts = [check_document(&invoice)?, check_document(&rc)?, check_document(&pod)?];
        check += t.elapsed();

        let t = Instant::now();
        let packet = merge_packet(&[&parts[0], &parts[1], &parts[2]])?;
        merge += t.elapsed();

        let t = Instant::now();
        write_atomically(&packets.join(format!("packet-{:03}.pdf", index % OUTPUT_SLOTS)), &packet)?;
        write += t.elapsed();

        packet_bytes = packet.len();
        if index + 1 == 100 {
            rss_after_100 = Some(memory_mib("VmRSS"));
        }
    }
    let elapsed = started.elapsed();
    let rss_end = memory_mib("VmRSS");
    let peak = memory_mib("VmHWM");

    // The last packet, checked: four pages.
    let last = std::fs::read(packets.join(format!("packet-{:03}.pdf", (n.max(1) - 1) % OUTPUT_SLOTS)))?;
    let pages = page_count(&check_document(&last)?);

    println!();
    println!("factord AutoMerge, {n} packets ({pages} pages, {:.0} KB each)", packet_bytes as f64 / 1024.0);
    println!("  {:<40} {:>12} {:>12}", "", "ms/packet", "packets/s");
    for (name, total) in [
        ("render invoice (krilla)", render),
        ("read + check 3 documents (lopdf)", check),
        ("merge + serialise (lopdf)", merge),
        ("write (temp, fsync, rename)", write),
    ] {
        println!("  {:<40} {:>12.2} {:>12.0}", name, millis(total, n), per_second(n, total));
    }
    println!("  {:<40} {:>12.2} {:>12.0}", "whole pipeline", millis(elapsed, n), per_second(n, elapsed));
    println!();
    println!("  {:<40} {:>10.1} MiB", "RSS before the loop", rss_start);
    match rss_after_100 {
        Some(rss) => println!("  {:<40} {:>10.1} MiB", "RSS after 100 packets", rss),
        None => println!("  {:<40} {:>10}", "RSS after 100 packets", "n/a (N < 100)"),
    }
    println!("  {:<40} {:>10.1} MiB", format!("RSS after {n} packets"), rss_end);
    println!("  {:<40} {:>10.1} MiB", "peak RSS (VmHWM)", peak);

    parallel_pipeline(n, &rc_path, &pod_path, &packets)?;
    compare_with_qpdf(temp.path(), &content(0), &rc_path, &pod_path, check + merge, n)?;
    Ok(())
}

/// The whole pipeline on one worker per core, as the invoice job runs it (it makes packets
/// concurrently, one per core).
fn parallel_pipeline(n: usize, rc_path: &Path, pod_path: &Path, packets: &Path) -> Result<(), Box<dyn Error>> {
    let workers = std::thread::available_parallelism().map_or(2, |w| w.get());
    let started = Instant::now();
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                scope.spawn(move || -> Result<(), String> {
                    for index in (worker..n).step_by(workers) {
                        let invoice = render_invoice(&content(index)).map_err(|e| e.to_string())?;
                        let rc = std::fs::read(rc_path).map_err(|e| e.to_string())?;
                        let pod = std::fs::read(pod_path).map_err(|e| e.to_string())?;
                        let check = |bytes: &[u8]| check_document(bytes).map_err(|e| e.to_string());
                        let parts = [check(&invoice)?, check(&rc)?, check(&pod)?];
                        let packet = merge_packet(&[&parts[0], &parts[1], &parts[2]]).map_err(|e| e.to_string())?;
                        let path = packets.join(format!("parallel-{:03}.pdf", index % OUTPUT_SLOTS));
                        write_atomically(&path, &packet).map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("worker panicked".to_string()))).collect()
    });
    let elapsed = started.elapsed();
    for result in results {
        result?;
    }
    println!();
    println!("whole pipeline on {workers} workers (as the invoice job runs it):");
    println!(
        "  {:<40} {:>12.2} {:>12.0}",
        "render + check + merge + write",
        millis(elapsed, n),
        per_second(n, elapsed)
    );
    println!("  {:<40} {:>10.1} MiB", "peak RSS (VmHWM) after both runs", memory_mib("VmHWM"));
    Ok(())
}

/// Times qpdf doing the same merge from files, one process per packet.
fn compare_with_qpdf(
    dir: &Path,
    sample: &InvoiceContent,
    rc: &Path,
    pod: &Path,
    ours_merge_only: Duration,
    ours_count: usize,
) -> Result<(), Box<dyn Error>> {
    let available = Command::new("qpdf").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    println!();
    if !available {
        println!("qpdf is not installed: comparison skipped");
        return Ok(());
    }
    let invoice = dir.join("inv.pdf");
    std::fs::write(&invoice, render_invoice(sample)?)?;
    let out = dir.join("qpdf-out.pdf");
    let paths = [&invoice, &rc.to_path_buf(), &pod.to_path_buf()].map(|p| p.display().to_string());
    let started = Instant::now();
    for _ in 0..QPDF_PACKETS {
        let status = Command::new("qpdf")
            .args(["--empty", "--pages", &paths[0], &paths[1], &paths[2], "--"])
            .arg(&out)
            .status()?;
        if !status.success() {
            return Err(format!("qpdf failed: {status}").into());
        }
    }
    let qpdf = started.elapsed();
    let qpdf_rate = per_second(QPDF_PACKETS, qpdf);
    let ours_rate = per_second(ours_count, ours_merge_only);
    println!("merge only (no rendering, no fsync), {QPDF_PACKETS} qpdf runs:");
    println!(
        "  {:<40} {:>12.2} {:>12.0}",
        "qpdf --empty --pages (1 process each)",
        millis(qpdf, QPDF_PACKETS),
        qpdf_rate
    );
    println!(
        "  {:<40} {:>12.2} {:>12.0}",
        "factord check + merge (in memory)",
        millis(ours_merge_only, ours_count),
        ours_rate
    );
    println!("  factord / qpdf: {:.1}x", ours_rate / qpdf_rate.max(f64::EPSILON));
    Ok(())
}
