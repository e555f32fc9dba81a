//! Test PDFs built directly with lopdf, and a scan-like JPEG: the documents a load points at
//! (rate confirmation, proof of delivery) and the broken ones AutoMerge must refuse.
//!
//! Shared by the unit tests of `src/invoicing/packet.rs` and by `benches/packets.rs`, both of
//! which include this file with `#[path = …] mod pdfs;`; it is not a test target itself.

use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Document, EncryptionState, EncryptionVersion, Object, ObjectId, Permissions, Stream};

/// US Letter and A4 landscape, in points.
pub const LETTER: [i64; 4] = [0, 0, 612, 792];
pub const A4_LANDSCAPE: [i64; 4] = [0, 0, 842, 595];

fn rect(r: [i64; 4]) -> Object {
    Object::Array(r.iter().map(|&n| Object::Integer(n)).collect())
}

fn name(n: &str) -> Object {
    Object::Name(n.as_bytes().to_vec())
}

fn dict(entries: Vec<(&str, Object)>) -> Dictionary {
    let mut d = Dictionary::new();
    for (key, value) in entries {
        d.set(key, value);
    }
    d
}

/// Helvetica, one of the 14 standard fonts: no embedding needed.
fn helvetica(doc: &mut Document) -> ObjectId {
    doc.add_object(dict(vec![
        ("Type", name("Font")),
        ("Subtype", name("Type1")),
        ("BaseFont", name("Helvetica")),
        ("Encoding", name("WinAnsiEncoding")),
    ]))
}

/// Content stream operations showing `lines` (x, y from the bottom, size, text) in font /F1.
fn text_operations(lines: &[(i64, i64, i64, String)]) -> Vec<Operation> {
    let mut ops = Vec::new();
    for (x, y, size, text) in lines {
        ops.push(Operation::new("BT", vec![]));
        ops.push(Operation::new("Tf", vec![name("F1"), Object::Integer(*size)]));
        ops.push(Operation::new("Td", vec![Object::Integer(*x), Object::Integer(*y)]));
        ops.push(Operation::new("Tj", vec![Object::string_literal(text.as_bytes().to_vec())]));
        ops.push(Operation::new("ET", vec![]));
    }
    ops
}

/// A Flate-compressed content stream, as real producers write them.
fn content_stream(doc: &mut Document, operations: Vec<Operation>) -> ObjectId {
    let bytes = Content { operations }.encode().expect("encode content");
    let mut stream = Stream::new(Dictionary::new(), bytes);
    stream.compress().expect("compress");
    doc.add_object(stream)
}

/// Catalog, trailer, and the bytes.
fn finish(mut doc: Document, pages_root: ObjectId) -> Vec<u8> {
    let catalog = doc.add_object(dict(vec![("Type", name("Catalog")), ("Pages", Object::Reference(pages_root))]));
    doc.trailer.set("Root", catalog);
    save(doc)
}

fn save(mut doc: Document) -> Vec<u8> {
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("save");
    bytes
}

/// A simple one-level page tree: pages as given, each with its own MediaBox and Resources.
fn flat_document(pages: Vec<Vec<Operation>>, media_box: [i64; 4]) -> (Document, ObjectId) {
    let mut doc = Document::with_version("1.5");
    let root = doc.new_object_id();
    let font = helvetica(&mut doc);
    let mut kids = Vec::new();
    for operations in pages {
        let contents = content_stream(&mut doc, operations);
        let page = doc.add_object(dict(vec![
            ("Type", name("Page")),
            ("Parent", Object::Reference(root)),
            ("MediaBox", rect(media_box)),
            (
                "Resources",
                Object::Dictionary(dict(vec![("Font", Object::Dictionary(dict(vec![("F1", font.into())])))])),
            ),
            ("Contents", Object::Reference(contents)),
        ]));
        kids.push(Object::Reference(page));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        root,
        Object::Dictionary(dict(vec![("Type", name("Pages")), ("Kids", kids.into()), ("Count", count.into())])),
    );
    (doc, root)
}

/// A text rate confirmation: each page headed "RATE CONFIRMATION page N of M  Load <load>",
/// then some forty lines of terms, like the broker PDFs it stands for.
pub fn rate_confirmation(load: &str, pages: usize) -> Vec<u8> {
    let pages = (1..=pages)
        .map(|n| {
            let mut lines = vec![(54, 740, 14, format!("RATE CONFIRMATION page {n} of {pages}  Load {load}"))];
            for k in 0..40 {
                let term = format!(
                    "{k:02}. Carrier agrees to haul load {load} at the agreed rate; detention after two hours, lumper with receipt."
                );
                lines.push((54, 710 - 15 * k, 8, term));
            }
            text_operations(&lines)
        })
        .collect();
    let (doc, root) = flat_document(pages, LETTER);
    finish(doc, root)
}

/// Width, height and number of colour components of a baseline or progressive JPEG.
pub fn jpeg_dimensions(jpeg: &[u8]) -> (i64, i64, i64) {
    let mut i = 2;
    while i + 9 < jpeg.len() {
        assert_eq!(jpeg[i], 0xFF, "not at a JPEG marker");
        let marker = jpeg[i + 1];
        let length = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if matches!(marker, 0xC0..=0xC2) {
            let height = i64::from(u16::from_be_bytes([jpeg[i + 5], jpeg[i + 6]]));
            let width = i64::from(u16::from_be_bytes([jpeg[i + 7], jpeg[i + 8]]));
            return (width, height, i64::from(jpeg[i + 9]));
        }
        i += 2 + length;
    }
    panic!("no SOF marker in the JPEG");
}

/// A one-page proof of delivery: the JPEG scan as an image XObject (/DCTDecode, bytes as
/// given) filling the page under a text line "PROOF OF DELIVERY Load <load>".
pub fn pod_with_jpeg(load: &str, jpeg: &[u8]) -> Vec<u8> {
    let (width, height, components) = jpeg_dimensions(jpeg);
    let mut doc = Document::with_version("1.5");
    let root = doc.new_object_id();
    let font = helvetica(&mut doc);
    let image = doc.add_object(Stream::new(
        dict(vec![
            ("Type", name("XObject")),
            ("Subtype", name("Image")),
            ("Width", width.into()),
            ("Height", height.into()),
            ("ColorSpace", name(if components == 1 { "DeviceGray" } else { "DeviceRGB" })),
            ("BitsPerComponent", 8.into()),
            ("Filter", name("DCTDecode")),
        ]),
        jpeg.to_vec(),
    ));
    // Scale the scan into the page below the heading, keeping its aspect ratio.
    let (box_w, box_h) = (540.0_f32, 680.0_f32);
    let scale = (box_w / width as f32).min(box_h / height as f32);
    let (w, h) = (width as f32 * scale, height as f32 * scale);
    let mut operations = vec![
        Operation::new("q", vec![]),
        Operation::new("cm", vec![w.into(), 0.into(), 0.into(), h.into(), 36.into(), (36.0 + box_h - h).into()]),
        Operation::new("Do", vec![name("Im1")]),
        Operation::new("Q", vec![]),
    ];
    operations.extend(text_operations(&[(36, 750, 14, format!("PROOF OF DELIVERY Load {load}"))]));
    let contents = content_stream(&mut doc, operations);
    let resources = dict(vec![
        ("Font", Object::Dictionary(dict(vec![("F1", font.into())]))),
        ("XObject", Object::Dictionary(dict(vec![("Im1", image.into())]))),
    ]);
    let page = doc.add_object(dict(vec![
        ("Type", name("Page")),
        ("Parent", root.into()),
        ("MediaBox", rect(LETTER)),
        ("Resources", Object::Dictionary(resources)),
        ("Contents", contents.into()),
    ]));
    doc.objects.insert(
        root,
        Object::Dictionary(dict(vec![
            ("Type", name("Pages")),
            ("Kids", vec![page.into()].into()),
            ("Count", 1.into()),
        ])),
    );
    finish(doc, root)
}

/// A grayscale JPEG that compresses like a scanned delivery receipt: off-white paper with
/// grain and lines of glyph-like strokes. 1275 × 1650 (Letter at 150 dpi) comes out near
/// 210 KB.
pub fn scanned_jpeg(width: u16, height: u16, seed: u64) -> Vec<u8> {
    /// Paper grain, ± grey levels.
    const GRAIN: u64 = 4;
    /// A glyph cell: 8 × 16 pixels (about 10 pt type at 150 dpi).
    const CELL_W: usize = 8;
    const CELL_H: usize = 16;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (w, h) = (usize::from(width), usize::from(height));
    let columns = w / CELL_W + 1;
    let cells: Vec<u64> = (0..columns * (h / CELL_H + 1)).map(|_| next()).collect();
    let mut pixels = vec![0u8; w * h];
    for y in 0..h {
        let row = y / CELL_H;
        // Every other row of cells is a text line, inside the page margins.
        let in_line = (3..12).contains(&(y % CELL_H)) && row.is_multiple_of(2) && y > h / 10 && y < h * 9 / 10;
        for x in 0..w {
            let grain = i32::try_from(next() % (2 * GRAIN + 1)).expect("below 2 * GRAIN + 1")
                - i32::try_from(GRAIN).expect("small");
            let mut value = 228 + grain;
            let cell = cells[row * columns + x / CELL_W];
            // One cell in six is a space; the others get two vertical strokes and a bar.
            if in_line && x > w / 12 && x < w * 11 / 12 && !cell.is_multiple_of(6) {
                let (cx, cy) = (x % CELL_W, y % CELL_H);
                let shape = (cell >> 8) & 0xFF;
                let vertical = cx == (shape % 6) as usize || cx == ((shape >> 3) % 6) as usize;
                let bar = cy == 3 + (shape % 3) as usize * 4;
                if (vertical || bar) && cx < CELL_W - 1 {
                    value = 60 + 2 * grain;
                }
            }
            pixels[y * w + x] = u8::try_from(value.clamp(0, 255)).expect("clamped to a byte");
        }
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 50)
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Luma)
        .expect("encode jpeg");
    jpeg
}

fn add_file_id(doc: &mut Document) {
    let id = Object::String(b"factord-test-file-id".to_vec(), lopdf::StringFormat::Hexadecimal);
    doc.trailer.set("ID", vec![id.clone(), id]);
}

fn encrypted(user_password: &str) -> Vec<u8> {
    let (mut doc, root) =
        flat_document(vec![text_operations(&[(54, 740, 14, "CONFIDENTIAL RATE CONFIRMATION".to_string())])], LETTER);
    let catalog = doc.add_object(dict(vec![("Type", name("Catalog")), ("Pages", root.into())]));
    doc.trailer.set("Root", catalog);
    add_file_id(&mut doc);
    let version = EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner-secret",
        user_password,
        key_length: 128,
        permissions: Permissions::PRINTABLE,
    };
    let state = EncryptionState::try_from(version).expect("encryption state");
    doc.encrypt(&state).expect("encrypt");
    save(doc)
}

/// A PDF that needs a password to open (RC4 128-bit, user password "user-secret").
pub fn encrypted_pdf() -> Vec<u8> {
    encrypted("user-secret")
}

/// A PDF with an owner password only: anyone can open it (lopdf does, silently), but it is
/// still encrypted and the factor's systems may refuse it.
pub fn owner_locked_pdf() -> Vec<u8> {
    encrypted("")
}

/// Three pages in a nested page tree, none with its own MediaBox or Resources:
/// root { MediaBox A4 landscape, Resources /F1 } → [ middle { Rotate 90 } → [page 1, page 2],
/// deep { } → [ deeper { } → [page 3] ] ]. Each page says "NESTED page N of 3 Load <load>".
pub fn nested_tree_pdf(load: &str) -> Vec<u8> {
    let mut doc = Document::with_version("1.4");
    let root = doc.new_object_id();
    let middle = doc.new_object_id();
    let deep = doc.new_object_id();
    let deeper = doc.new_object_id();
    let font = helvetica(&mut doc);
    let page = |doc: &mut Document, n: i64, parent: ObjectId| -> Object {
        let operations = text_operations(&[(60, 500, 16, format!("NESTED page {n} of 3 Load {load}"))]);
        let contents = content_stream(doc, operations);
        doc.add_object(dict(vec![("Type", name("Page")), ("Parent", parent.into()), ("Contents", contents.into())]))
            .into()
    };
    let page1 = page(&mut doc, 1, middle);
    let page2 = page(&mut doc, 2, middle);
    let page3 = page(&mut doc, 3, deeper);
    let node = |parent: ObjectId, kids: Vec<Object>, count: i64| {
        dict(vec![("Type", name("Pages")), ("Parent", parent.into()), ("Kids", kids.into()), ("Count", count.into())])
    };
    let mut middle_node = node(root, vec![page1, page2], 2);
    middle_node.set("Rotate", 90);
    doc.objects.insert(middle, Object::Dictionary(middle_node));
    doc.objects.insert(deeper, Object::Dictionary(node(deep, vec![page3], 1)));
    doc.objects.insert(deep, Object::Dictionary(node(root, vec![deeper.into()], 1)));
    let resources = dict(vec![("Font", Object::Dictionary(dict(vec![("F1", font.into())])))]);
    let root_node = dict(vec![
        ("Type", name("Pages")),
        ("Kids", vec![Object::Reference(middle), Object::Reference(deep)].into()),
        ("Count", 3.into()),
        ("MediaBox", rect(A4_LANDSCAPE)),
        ("Resources", Object::Dictionary(resources)),
    ]);
    doc.objects.insert(root, Object::Dictionary(root_node));
    finish(doc, root)
}

/// One page whose catalog carries an outline and an AcroForm (a text field with a widget on
/// the page); the page says "FORM Load <load>".
pub fn pdf_with_outline_and_form(load: &str) -> Vec<u8> {
    let (mut doc, root) = flat_document(vec![text_operations(&[(54, 740, 14, format!("FORM Load {load}"))])], LETTER);
    let kids = doc.get_dictionary(root).and_then(|d| d.get(b"Kids")).and_then(Object::as_array).expect("kids");
    let page = kids[0].as_reference().expect("page");
    let field = doc.add_object(dict(vec![
        ("Type", name("Annot")),
        ("Subtype", name("Widget")),
        ("FT", name("Tx")),
        ("T", Object::string_literal("driver")),
        ("V", Object::string_literal("J. Smith")),
        ("Rect", rect([54, 600, 300, 620])),
        ("P", page.into()),
    ]));
    doc.get_dictionary_mut(page).expect("page").set("Annots", vec![Object::Reference(field)]);
    let outlines = doc.new_object_id();
    let item = doc.add_object(dict(vec![
        ("Title", Object::string_literal("Page one")),
        ("Parent", outlines.into()),
        ("Dest", vec![page.into(), name("Fit")].into()),
    ]));
    doc.objects.insert(
        outlines,
        Object::Dictionary(dict(vec![
            ("Type", name("Outlines")),
            ("First", item.into()),
            ("Last", item.into()),
            ("Count", 1.into()),
        ])),
    );
    let acro_form = doc.add_object(dict(vec![("Fields", vec![Object::Reference(field)].into())]));
    let catalog = doc.add_object(dict(vec![
        ("Type", name("Catalog")),
        ("Pages", root.into()),
        ("Outlines", outlines.into()),
        ("AcroForm", acro_form.into()),
    ]));
    doc.trailer.set("Root", catalog);
    save(doc)
}

/// A page tree whose second kid is an object the file does not contain.
pub fn pdf_with_missing_page() -> Vec<u8> {
    let (mut doc, root) = flat_document(vec![text_operations(&[(54, 740, 14, "page one".to_string())])], LETTER);
    let kids = doc.get_dictionary(root).and_then(|d| d.get(b"Kids")).and_then(Object::as_array).expect("kids");
    let first = kids[0].as_reference().expect("page");
    let pages = doc.get_dictionary_mut(root).expect("root");
    pages.set("Kids", vec![Object::Reference(first), Object::Reference((999, 0))]);
    pages.set("Count", 2);
    finish(doc, root)
}

/// A well-formed PDF with an empty page tree.
pub fn pdf_without_pages() -> Vec<u8> {
    let (doc, root) = flat_document(Vec::new(), LETTER);
    finish(doc, root)
}
