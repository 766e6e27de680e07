//! Intercom's HTML bodies to text (`html::html_to_text`), three ways:
//! - the raw bytes as HTML: no panic, no pathological time, tidy output;
//! - the bytes as an agent's plain text through `text_to_html` and back: every visible
//!   character survives (whitespace is normalised, as HTML does);
//! - the bytes as a recipe for markup where every `<` opens a real tag and `&` an
//!   entity other than `&lt;`: the text then holds no `<` at all, i.e. no tag leaks.

#![no_main]

use libfuzzer_sys::fuzz_target;
// Through the registration, which names every connector crate once.
use switchboard::registry::crates::switchboard_intercom;
use switchboard_intercom::html::{html_to_text, text_to_html};

/// Well-formed tags a `<` in the recipe becomes, picked by the byte after it.
const TAGS: &[&str] = &[
    "<p>",
    "</p>",
    "<br>",
    "<br/>",
    "<div class=\"intercom-container\">",
    "</div>",
    "<a href=\"https://example.com/x?a=1&amp;b=2\">",
    "<a href='mailto:a@b.c'>",
    "</a>",
    "<img src=\"https://downloads.intercomcdn.com/i/o/1/a.png\" alt=\"x > y\">",
    "<ul>",
    "<li>",
    "</li>",
    "</ul>",
    "<pre>",
    "</pre>",
    "<script>",
    "</script>",
    "<style>",
    "</style>",
    "<!-- a > comment -->",
    "<!DOCTYPE html>",
    "<b title='a \"quoted\" <title>'>",
    "</b>",
    "<h1>",
    "</h1>",
    "<span data-x=\"1\"/>",
    "<?xml version=\"1.0\"?>",
];

/// Entities an `&` in the recipe becomes: none of them decodes to `<`.
const ENTITIES: &[&str] = &[
    "&amp;",
    "&gt;",
    "&quot;",
    "&nbsp;",
    "&#8364;",
    "&#x1F600;",
    "&eacute;",
    "&unknown;",
    "&#0;",
    "&#xD800;",
    "&",
];

fn recipe(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 4);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '<' => {
                let pick = chars.next().map_or(0, |c| c as usize);
                out.push_str(TAGS[pick % TAGS.len()]);
            }
            '&' => {
                let pick = chars.next().map_or(0, |c| c as usize);
                out.push_str(ENTITIES[pick % ENTITIES.len()]);
                // `&` followed by text could spell `&lt;` or `&#60;`: keep it apart.
                out.push(' ');
            }
            c => out.push(c),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    let c = html_to_text(s);
    assert!(c.images.iter().all(|i| !i.is_empty()));
    assert!(
        !c.text.contains("\n\n\n"),
        "at most one blank line: {:?}",
        c.text
    );
    for line in c.text.split('\n') {
        assert_eq!(line.trim_matches([' ', '\t', '\r']), line, "untrimmed line");
    }
    assert!(!c.text.starts_with('\n') && !c.text.ends_with('\n'));

    let visible = |t: &str| -> String {
        t.chars()
            .filter(|c| !c.is_whitespace() && *c != '\u{a0}')
            .collect()
    };
    let back = html_to_text(&text_to_html(s));
    assert_eq!(visible(&back.text), visible(s), "round trip of {s:?}");
    assert!(back.images.is_empty());

    let html = recipe(s);
    let r = html_to_text(&html);
    assert!(
        !r.text.contains('<'),
        "a tag leaked from {html:?}: {:?}",
        r.text
    );
});
