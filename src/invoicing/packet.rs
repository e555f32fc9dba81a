//! Document checks and AutoMerge (docs/design.md §3): the rate confirmation and proof of delivery a
//! load points at are checked before anything is numbered, and the invoice, rate confirmation
//! and POD are merged, in that order, into one packet PDF for the factor. Works on bytes and
//! [`lopdf::Document`]s only; reading and writing files is the caller's business.
//!
//! The merge follows lopdf's own merge example: each source is renumbered above the objects
//! already taken, its pages are collected in page order, and one new page tree and catalog
//! are built over them. Two things the example leaves to its users are done here:
//! - Attributes a page inherits from its page-tree ancestors (MediaBox, CropBox, Resources,
//!   Rotate) are written onto every page *before* renumbering, because the ancestors are not
//!   copied, and a page that kept a reference to a missing ancestor value would silently alias
//!   an unrelated object once renumbered.
//! - Each source's catalog (and with it /Outlines, /AcroForm, named destinations) is dropped
//!   and objects nothing points at any more are pruned; a reference left pointing at a
//!   dropped object becomes `null`, as the PDF specification reads a missing object anyway.

use std::collections::HashSet;

use lopdf::{Dictionary, Document, Object, ObjectId};

/// How far into the file the `%PDF-` header may start: Acrobat accepts up to 1024 bytes of
/// leading junk (some mail gateways and scanners add it), so we look that far too.
const HEADER_SEARCH_LIMIT: usize = 1024;
/// How far from the end of the file the `%%EOF` marker may sit (junk after it is common and
/// tolerated by viewers within this distance).
const TRAILER_SEARCH_LIMIT: usize = 1024;
/// How far from the end of a JPEG its end-of-image marker may sit: some scanners pad after it.
const JPEG_END_SEARCH_LIMIT: usize = 64;
/// Deepest page tree accepted. Real trees have 2–4 levels; deeper is a loop or an attack.
const MAX_PAGE_TREE_DEPTH: usize = 64;
/// The MediaBox given to a page that has none anywhere up its tree (invalid, but viewers
/// then assume US Letter, and so do we).
const DEFAULT_MEDIA_BOX: [i64; 4] = [0, 0, 612, 792];
/// PDF version written when the sources are older; the highest source version wins.
const MINIMUM_OUTPUT_VERSION: &str = "1.7";

/// Why a document cannot go into a packet. The text completes a sentence naming the file,
/// e.g. "rate confirmation documents/L1/rc.pdf is encrypted (…)", so ops know what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentProblem {
    #[error("is not a PDF")]
    NotPdf,
    #[error("is encrypted (password protection must be removed before it can be merged)")]
    Encrypted,
    #[error("is damaged: {0}")]
    Damaged(String),
    #[error("has no pages")]
    NoPages,
}

/// Why documents that passed [`check_document`] could not be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("there are no documents to merge")]
    NoDocuments,
    #[error("document {position} of the packet is damaged: {detail}")]
    Damaged { position: usize, detail: String },
    #[error("the merged packet could not be written: {0}")]
    Write(String),
}

/// Checks that `bytes` are a PDF that can be merged: has a `%PDF-` header, ends with a `%%EOF`
/// marker (so it was not cut short), loads, is not encrypted (not even with an owner password
/// only, which lopdf opens), has a readable page tree with at least one page, and every object
/// its pages use is present, scans included. Returns the loaded document for [`merge_packet`].
///
/// lopdf repairs a broken cross-reference table by scanning for objects; a complete file
/// repaired that way is accepted when nothing its pages need is missing.
pub fn check_document(bytes: &[u8]) -> Result<Document, DocumentProblem> {
    let head = &bytes[..bytes.len().min(HEADER_SEARCH_LIMIT)];
    if !contains(head, b"%PDF-") {
        return Err(DocumentProblem::NotPdf);
    }
    // A file still being written, or cut short in transit, lacks its end marker; lopdf would
    // rebuild what it can and might even show an older revision of an incrementally saved file.
    let tail = &bytes[bytes.len().saturating_sub(TRAILER_SEARCH_LIMIT)..];
    if !contains(tail, b"%%EOF") {
        return Err(DocumentProblem::Damaged(
            "it is truncated (no %%EOF end marker; was it copied while still being written?)".to_string(),
        ));
    }
    // lopdf is a parser of untrusted input; a panic in it must not take the daemon down.
    let loaded = std::panic::catch_unwind(|| Document::load_mem(bytes));
    let document = match loaded {
        Ok(Ok(document)) => document,
        // An encrypted file lopdf cannot open fails in many ways; name the real cause.
        _ if contains(bytes, b"/Encrypt") => return Err(DocumentProblem::Encrypted),
        Ok(Err(error)) => return Err(DocumentProblem::Damaged(error.to_string())),
        Err(_) => return Err(DocumentProblem::Damaged("the PDF reader could not parse it".to_string())),
    };
    // lopdf decrypts owner-password-only files on load and removes /Encrypt from the trailer;
    // `was_encrypted` remembers. A file it could not decrypt keeps /Encrypt.
    if document.trailer.has(b"Encrypt") || document.was_encrypted() {
        return Err(DocumentProblem::Encrypted);
    }
    let pages = page_ids(&document).map_err(DocumentProblem::Damaged)?;
    if pages.is_empty() {
        return Err(DocumentProblem::NoPages);
    }
    if document.get_pages().len() != pages.len() {
        return Err(DocumentProblem::Damaged("its page tree is inconsistent".to_string()));
    }
    missing_page_objects(&document, &pages).map_err(DocumentProblem::Damaged)?;
    Ok(document)
}

/// Number of pages of a checked document.
pub fn page_count(document: &Document) -> usize {
    document.get_pages().len()
}

/// Merges checked documents into one PDF, all pages in the order given (invoice, rate
/// confirmation, proof of delivery). Sources are not modified.
pub fn merge_packet(parts: &[&Document]) -> Result<Vec<u8>, PacketError> {
    if parts.is_empty() {
        return Err(PacketError::NoDocuments);
    }
    let version = parts.iter().map(|p| p.version.as_str()).fold(MINIMUM_OUTPUT_VERSION, |a, b| a.max(b)).to_string();
    let mut merged = Document::with_version(version);
    let pages_root: ObjectId = (1, 0);
    let catalog: ObjectId = (2, 0);
    let mut next_id = 3;
    let mut kids = Vec::new();

    for (index, part) in parts.iter().enumerate() {
        let damaged = |detail: String| PacketError::Damaged { position: index + 1, detail };
        let mut source = (*part).clone();
        for page in page_ids(&source).map_err(damaged)? {
            make_inherited_attributes_explicit(&mut source, page).map_err(damaged)?;
        }
        source.renumber_objects_with(next_id);
        next_id = source.max_id + 1;

        let pages = page_ids(&source).map_err(damaged)?;
        let mut dropped = page_tree_nodes(&source).map_err(damaged)?;
        if let Ok(root) = source.trailer.get(b"Root").and_then(Object::as_reference) {
            dropped.insert(root);
        }
        for (id, object) in std::mem::take(&mut source.objects) {
            if !dropped.contains(&id) {
                merged.objects.insert(id, object);
            }
        }
        for page in pages {
            let dictionary = merged
                .get_dictionary_mut(page)
                .map_err(|_| damaged(format!("page object {} {} R went missing", page.0, page.1)))?;
            dictionary.set("Parent", pages_root);
            kids.push(Object::Reference(page));
        }
    }

    let count = i64::try_from(kids.len()).map_err(|_| PacketError::Write("too many pages".to_string()))?;
    let mut root = Dictionary::new();
    root.set("Type", Object::Name(b"Pages".to_vec()));
    root.set("Count", count);
    root.set("Kids", kids);
    merged.objects.insert(pages_root, Object::Dictionary(root));
    let mut catalog_dictionary = Dictionary::new();
    catalog_dictionary.set("Type", Object::Name(b"Catalog".to_vec()));
    catalog_dictionary.set("Pages", pages_root);
    merged.objects.insert(catalog, Object::Dictionary(catalog_dictionary));
    merged.trailer.set("Root", catalog);
    merged.max_id = next_id - 1;

    // Outlines, AcroForm, old info dictionaries, object and xref streams: nothing reaches them.
    merged.prune_objects();
    let present: HashSet<ObjectId> = merged.objects.keys().copied().collect();
    merged.traverse_objects(|object| {
        if let Object::Reference(id) = object
            && !present.contains(id)
        {
            *object = Object::Null;
        }
    });

    let mut bytes = Vec::new();
    merged.save_to(&mut bytes).map_err(|error| PacketError::Write(error.to_string()))?;
    Ok(bytes)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

fn type_is(dictionary: &Dictionary, name: &[u8]) -> bool {
    dictionary.get(b"Type").and_then(Object::as_name).is_ok_and(|t| t == name)
}

fn show(id: ObjectId) -> String {
    format!("{} {} R", id.0, id.1)
}

/// The page tree walked from the catalog: page ids in page order, or what is wrong with it.
/// Every kid must exist and be a /Page or a /Pages node; loops and absurd depth are refused.
/// (lopdf's own page iterator skips what it cannot read, which would lose pages silently.)
fn page_ids(document: &Document) -> Result<Vec<ObjectId>, String> {
    let mut pages = Vec::new();
    walk_page_tree(document, |id, is_page| {
        if is_page {
            pages.push(id);
        }
    })?;
    Ok(pages)
}

/// The intermediate (/Pages) nodes of the page tree, root included.
fn page_tree_nodes(document: &Document) -> Result<HashSet<ObjectId>, String> {
    let mut nodes = HashSet::new();
    walk_page_tree(document, |id, is_page| {
        if !is_page {
            nodes.insert(id);
        }
    })?;
    Ok(nodes)
}

fn walk_page_tree(document: &Document, mut visit: impl FnMut(ObjectId, bool)) -> Result<(), String> {
    let catalog = document.catalog().map_err(|_| "it has no readable document catalog".to_string())?;
    let root = catalog
        .get(b"Pages")
        .and_then(Object::as_reference)
        .map_err(|_| "its catalog names no page tree".to_string())?;
    let mut seen = HashSet::new();
    // Depth-first, kids pushed in reverse so pages come out in document order.
    let mut pending = vec![(root, 0usize)];
    while let Some((id, depth)) = pending.pop() {
        if !seen.insert(id) {
            return Err(format!("its page tree visits object {} twice", show(id)));
        }
        if depth > MAX_PAGE_TREE_DEPTH {
            return Err("its page tree is too deep".to_string());
        }
        let node = document
            .get_dictionary(id)
            .map_err(|_| format!("its page tree refers to a missing or invalid object {}", show(id)))?;
        if depth > 0 && type_is(node, b"Page") {
            visit(id, true);
            continue;
        }
        if depth > 0 && !type_is(node, b"Pages") {
            return Err(format!("its page tree holds object {}, which is neither a page nor a page list", show(id)));
        }
        visit(id, false);
        let kids = node
            .get(b"Kids")
            .and_then(|kids| document.dereference(kids))
            .and_then(|(_, kids)| kids.as_array())
            .map_err(|_| format!("page list {} has no readable /Kids", show(id)))?;
        for kid in kids.iter().rev() {
            let kid =
                kid.as_reference().map_err(|_| format!("page list {} has a kid that is not a reference", show(id)))?;
            pending.push((kid, depth + 1));
        }
    }
    Ok(())
}

/// Fails naming the first object that the pages use (contents, resources, images, fonts,
/// annotations, all the way down) and that is not in the file.
fn missing_page_objects(document: &Document, pages: &[ObjectId]) -> Result<(), String> {
    let mut seen: HashSet<ObjectId> = pages.iter().copied().collect();
    let mut pending: Vec<ObjectId> = pages.to_vec();
    let mut values: Vec<&Object> = Vec::new();
    while let Some(id) = pending.pop() {
        let object =
            document.get_object(id).map_err(|_| format!("object {} used by its pages is missing", show(id)))?;
        values.push(object);
        while let Some(value) = values.pop() {
            match value {
                Object::Reference(target) if seen.insert(*target) => pending.push(*target),
                Object::Array(items) => values.extend(items.iter()),
                Object::Dictionary(dictionary) => push_children(dictionary, &mut values),
                Object::Stream(stream) => {
                    if is_incomplete_jpeg(stream) {
                        return Err(format!("image {} is not a complete JPEG (the scan is cut short)", show(id)));
                    }
                    push_children(&stream.dict, &mut values);
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A /DCTDecode stream (a scan, usually) that does not start with a JPEG start-of-image and end
/// with an end-of-image marker: the scan was cut short before the PDF was wrapped around it.
/// (Bytes lost from the middle of a JPEG go unnoticed: that would take decoding it.)
fn is_incomplete_jpeg(stream: &lopdf::Stream) -> bool {
    let dct = match stream.dict.get(b"Filter") {
        Ok(Object::Name(name)) => name.as_slice() == b"DCTDecode",
        Ok(Object::Array(filters)) => filters.len() == 1 && filters[0].as_name().is_ok_and(|n| n == b"DCTDecode"),
        _ => false,
    };
    if !dct {
        return false;
    }
    let data = stream.content.as_slice();
    let tail = &data[data.len().saturating_sub(JPEG_END_SEARCH_LIMIT)..];
    !(data.starts_with(&[0xFF, 0xD8]) && contains(tail, &[0xFF, 0xD9]))
}

/// Values in a dictionary to follow. A page-tree node's /Parent leads up the tree, not into
/// what the page uses, so it is not followed.
fn push_children<'a>(dictionary: &'a Dictionary, values: &mut Vec<&'a Object>) {
    let tree_node = type_is(dictionary, b"Page") || type_is(dictionary, b"Pages");
    for (key, value) in dictionary.iter() {
        if !(tree_node && key.as_slice() == b"Parent") {
            values.push(value);
        }
    }
}

/// Copies inherited MediaBox, CropBox, Resources and Rotate onto the page itself (PDF 32000-1
/// §7.7.3.4). A value that is `null` or refers to a missing object counts as absent, so the
/// nearest real value up the tree wins. A page with no MediaBox anywhere gets US Letter, and
/// one with no Resources an empty dictionary; CropBox and Rotate have defaults and are only
/// written when some node sets them.
fn make_inherited_attributes_explicit(document: &mut Document, page: ObjectId) -> Result<(), String> {
    let media_box = inherited(document, page, b"MediaBox")?
        .unwrap_or_else(|| Object::Array(DEFAULT_MEDIA_BOX.iter().map(|&n| Object::Integer(n)).collect()));
    let resources = inherited(document, page, b"Resources")?.unwrap_or_else(|| Object::Dictionary(Dictionary::new()));
    let crop_box = inherited(document, page, b"CropBox")?;
    let rotate = inherited(document, page, b"Rotate")?;

    let dictionary =
        document.get_dictionary_mut(page).map_err(|_| format!("page {} is not a dictionary", show(page)))?;
    dictionary.set("MediaBox", media_box);
    dictionary.set("Resources", resources);
    match crop_box {
        Some(crop_box) => dictionary.set("CropBox", crop_box),
        None => {
            dictionary.remove(b"CropBox");
        }
    }
    match rotate {
        Some(rotate) => dictionary.set("Rotate", rotate),
        None => {
            dictionary.remove(b"Rotate");
        }
    }
    Ok(())
}

/// The value of `key` on the page or its nearest ancestor that has a real one.
fn inherited(document: &Document, page: ObjectId, key: &[u8]) -> Result<Option<Object>, String> {
    let mut current = page;
    let mut seen = HashSet::new();
    loop {
        if !seen.insert(current) || seen.len() > MAX_PAGE_TREE_DEPTH + 1 {
            return Err(format!("the ancestors of page {} loop", show(page)));
        }
        let node =
            document.get_dictionary(current).map_err(|_| format!("page tree node {} is missing", show(current)))?;
        if let Ok(value) = node.get(key) {
            match document.dereference(value) {
                Ok((_, Object::Null)) | Err(_) => {}
                Ok(_) => return Ok(Some(value.clone())),
            }
        }
        match node.get(b"Parent").and_then(Object::as_reference) {
            Ok(parent) => current = parent,
            Err(_) => return Ok(None),
        }
    }
}

#[cfg(test)]
#[path = "../../tests/common/pdfs.rs"]
#[allow(dead_code, reason = "shared test helpers: these tests use a part of them")]
mod pdfs;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Money;
    use crate::invoicing::content::InvoiceContent;
    use crate::invoicing::render::render_invoice;
    use std::path::Path;
    use std::process::Command;

    fn tool(program: &str, args: &[&str]) -> std::process::Output {
        Command::new(program).args(args).output().unwrap_or_else(|e| {
            panic!("`{program}` is needed by these tests (apt-get install poppler-utils qpdf): {e}")
        })
    }

    fn text_of_page(pdf: &str, page: usize) -> String {
        let number = page.to_string();
        let output = tool("pdftotext", &["-f", &number, "-l", &number, pdf, "-"]);
        assert!(output.status.success(), "pdftotext page {page}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn qpdf_check(pdf: &str) {
        let output = tool("qpdf", &["--check", pdf]);
        let report = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "qpdf --check failed:\n{report}");
        assert!(report.contains("No syntax or stream encoding errors found"), "{report}");
    }

    fn save(dir: &Path, name: &str, bytes: &[u8]) -> String {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        path.to_string_lossy().into_owned()
    }

    fn invoice(load: &str) -> Vec<u8> {
        render_invoice(&InvoiceContent {
            seller_name: "Blue Ridge Haulage LLC".to_string(),
            seller_address: "1200 Industrial Pkwy, Dalton, GA 30721".to_string(),
            seller_mc: Some("884213".to_string()),
            seller_usdot: Some("3021457".to_string()),
            customer_id: "C-42".to_string(),
            customer_name: "Apex Freight Brokerage Inc".to_string(),
            customer_mc: Some("551002".to_string()),
            invoice_number: "BRH-000117".to_string(),
            invoice_date: chrono::NaiveDate::from_ymd_opt(2025, 3, 5).expect("date"),
            load_number: load.to_string(),
            po_number: Some("PO-77812".to_string()),
            pickup: Some("Dallas, TX".to_string()),
            delivery: Some("Atlanta, GA".to_string()),
            delivered: Some("2025-03-03".to_string()),
            bill_to_name: None,
            bill_to_address: None,
            terms_days: 30,
            bol_number: None,
            picked_up: None,
            shipper: None,
            consignee: None,
            lines: Vec::new(),
            remit_to_factor: None,
            amount: Money::from_cents(245_000),
            noa: Some("All payments must be made to Example Factor LLC.".to_string()),
        })
        .expect("render")
    }

    #[test]
    fn packet_has_all_pages_in_order_and_passes_qpdf() {
        let dir = tempfile::tempdir().expect("tempdir");
        let invoice = check_document(&invoice("L-20931")).expect("invoice");
        let rc = check_document(&pdfs::rate_confirmation("L-20931", 2)).expect("rc");
        let jpeg = pdfs::scanned_jpeg(850, 1100, 7);
        let pod = check_document(&pdfs::pod_with_jpeg("L-20931", &jpeg)).expect("pod");
        assert_eq!((page_count(&invoice), page_count(&rc), page_count(&pod)), (1, 2, 1));

        let bytes = merge_packet(&[&invoice, &rc, &pod]).expect("merge");
        let pdf = save(dir.path(), "packet.pdf", &bytes);
        qpdf_check(&pdf);

        let merged = check_document(&bytes).expect("the packet is itself a good document");
        assert_eq!(page_count(&merged), 1 + 2 + 1);
        assert!(text_of_page(&pdf, 1).contains("INVOICE"));
        assert!(text_of_page(&pdf, 1).contains("$2,450.00"));
        assert!(text_of_page(&pdf, 2).contains("RATE CONFIRMATION page 1 of 2 Load L-20931"));
        assert!(text_of_page(&pdf, 3).contains("RATE CONFIRMATION page 2 of 2 Load L-20931"));
        assert!(text_of_page(&pdf, 4).contains("PROOF OF DELIVERY Load L-20931"));

        // The scan went through untouched: same JPEG bytes, still DCTDecode.
        let pod_page = merged.get_pages()[&4];
        let images = merged.get_page_images(pod_page).expect("images");
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].content, jpeg.as_slice());
        assert!(bytes.len() > jpeg.len());
    }

    #[test]
    fn nested_page_tree_keeps_inherited_media_box_and_resources() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = check_document(&pdfs::nested_tree_pdf("L-5")).expect("nested");
        assert_eq!(page_count(&nested), 3);
        let rc = check_document(&pdfs::rate_confirmation("L-5", 1)).expect("rc");
        let bytes = merge_packet(&[&rc, &nested]).expect("merge");
        let pdf = save(dir.path(), "packet.pdf", &bytes);
        qpdf_check(&pdf);

        let merged = check_document(&bytes).expect("packet");
        let pages = merged.get_pages();
        assert_eq!(pages.len(), 4);
        let media_box = |number: u32| {
            let page = merged.get_dictionary(pages[&number]).expect("page");
            page.get(b"MediaBox").and_then(Object::as_array).expect("explicit MediaBox").clone()
        };
        let letter: Vec<Object> = [0, 0, 612, 792].into_iter().map(Object::Integer).collect();
        let a4_landscape: Vec<Object> = [0, 0, 842, 595].into_iter().map(Object::Integer).collect();
        assert_eq!(media_box(1), letter);
        for number in 2..=4 {
            assert_eq!(media_box(number), a4_landscape, "page {number}");
            let page = merged.get_dictionary(pages[&number]).expect("page");
            assert!(page.has(b"Resources"), "page {number} lost its inherited resources");
            let rotate = page.get(b"Rotate").and_then(Object::as_i64).ok();
            assert_eq!(rotate, if number < 4 { Some(90) } else { None }, "page {number}");
        }
        // poppler agrees: the pages are A4 landscape and their text (which needs the inherited
        // font resource) comes out in order.
        let info = tool("pdfinfo", &["-f", "2", "-l", "4", &pdf]);
        let info = String::from_utf8_lossy(&info.stdout).into_owned();
        assert_eq!(info.matches("842 x 595 pts").count(), 3, "{info}");
        for (page, n) in [(2, 1), (3, 2), (4, 3)] {
            assert!(text_of_page(&pdf, page).contains(&format!("NESTED page {n} of 3 Load L-5")), "page {page}");
        }
    }

    #[test]
    fn outlines_and_forms_of_sources_are_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let with_extras = check_document(&pdfs::pdf_with_outline_and_form("L-9")).expect("source");
        let bytes = merge_packet(&[&with_extras]).expect("merge");
        let pdf = save(dir.path(), "packet.pdf", &bytes);
        qpdf_check(&pdf);
        let merged = check_document(&bytes).expect("packet");
        let catalog = merged.catalog().expect("catalog");
        assert!(!catalog.has(b"Outlines") && !catalog.has(b"AcroForm"));
        assert!(text_of_page(&pdf, 1).contains("FORM Load L-9"));
        assert!(
            !merged.objects.values().any(|o| o.as_dict().is_ok_and(|d| d.has(b"Title") && d.has(b"Dest"))),
            "outline items were copied"
        );
    }

    #[test]
    fn refuses_what_is_not_a_pdf() {
        assert_eq!(check_document(b"").err(), Some(DocumentProblem::NotPdf));
        assert_eq!(check_document(b"PK\x03\x04 a zip file").err(), Some(DocumentProblem::NotPdf));
        let jpeg = pdfs::scanned_jpeg(64, 64, 1);
        assert_eq!(check_document(&jpeg).err(), Some(DocumentProblem::NotPdf));
        assert_eq!(DocumentProblem::NotPdf.to_string(), "is not a PDF");
    }

    #[test]
    fn refuses_encrypted_pdfs_even_when_lopdf_can_open_them() {
        let user_locked = pdfs::encrypted_pdf();
        assert_eq!(check_document(&user_locked).err(), Some(DocumentProblem::Encrypted));
        // Owner password only: lopdf decrypts it on load and drops /Encrypt from the trailer.
        let owner_locked = pdfs::owner_locked_pdf();
        let opened = Document::load_mem(&owner_locked).expect("lopdf opens owner-locked files");
        assert!(!opened.trailer.has(b"Encrypt"), "lopdf behaviour changed; revisit the check");
        assert_eq!(check_document(&owner_locked).err(), Some(DocumentProblem::Encrypted));
        assert!(DocumentProblem::Encrypted.to_string().starts_with("is encrypted"));
    }

    #[test]
    fn refuses_damaged_and_empty_pdfs_without_panicking() {
        let rc = pdfs::rate_confirmation("L-1", 2);
        let pod = pdfs::pod_with_jpeg("L-1", &pdfs::scanned_jpeg(400, 500, 3));
        for source in [&rc, &pod] {
            for fraction in [10, 30, 50, 70, 90, 97] {
                let cut = &source[..source.len() * fraction / 100];
                match check_document(cut) {
                    Err(DocumentProblem::Damaged(detail)) => assert!(!detail.is_empty()),
                    other => panic!("{fraction}% of a PDF: expected Damaged, got {:?}", other.map(|d| page_count(&d))),
                }
            }
        }
        // A structurally sound PDF around a scan that was cut short before it was wrapped.
        let jpeg = pdfs::scanned_jpeg(400, 500, 3);
        let cut_scan = pdfs::pod_with_jpeg("L-1", &jpeg[..jpeg.len() / 2]);
        match check_document(&cut_scan) {
            Err(DocumentProblem::Damaged(detail)) => assert!(detail.contains("not a complete JPEG"), "{detail}"),
            other => panic!("a POD with half a JPEG: expected Damaged, got {:?}", other.map(|d| page_count(&d))),
        }
        // A header and nothing else.
        assert!(matches!(check_document(b"%PDF-1.7\n"), Err(DocumentProblem::Damaged(_))));
        assert!(matches!(
            check_document(&pdfs::pdf_with_missing_page()),
            Err(DocumentProblem::Damaged(detail)) if detail.contains("missing")
        ));
        assert_eq!(check_document(&pdfs::pdf_without_pages()).err(), Some(DocumentProblem::NoPages));
        assert!(DocumentProblem::Damaged("x".into()).to_string().starts_with("is damaged: "));
        assert_eq!(DocumentProblem::NoPages.to_string(), "has no pages");
    }

    #[test]
    fn garbage_after_a_header_never_panics() {
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        for length in [16, 100, 1000, 5000] {
            let mut bytes = b"%PDF-1.4\n".to_vec();
            for _ in 0..length {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(state.to_le_bytes()[3]);
            }
            assert!(check_document(&bytes).is_err());
        }
    }

    #[test]
    fn merging_nothing_is_an_error() {
        assert_eq!(merge_packet(&[]).err(), Some(PacketError::NoDocuments));
    }
}
