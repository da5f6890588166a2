// Package attachments finds every file a message carries and says what is
// dangerous about it, in MailScanner's terms where MailScanner has them.
//
// The pieces, in the order a scan uses them:
//
//   - Walk reads the MIME structure in one pass over the raw message,
//     line by line, with a stack of the open multipart boundaries. A
//     delimiter of an outer multipart closes every inner part still open
//     (RFC 2046 §5.1.2), so a missing inner end boundary loses nothing; a
//     header block that stops without an empty line starts the body where
//     the first non-header line is; nesting and the number of parts are
//     bounded. Every entity keeps its byte offsets in the message, which is
//     what lets a deny+delete rule cut one part out and deliver the rest
//     (RemoveParts). Header fields are held as go-message textproto
//     headers; parameters are read by our own lenient parser (RFC 2045,
//     RFC 2231 continuations and charsets, RFC 2047 words in quoted values),
//     and charsets are decoded through go-message's charset package.
//     Base64- or quoted-printable-encoded message/rfc822 parts are decoded
//     and walked too, as mime4j does.
//   - DecodeFilename and NormalizeFilename turn what a header says into
//     the names rules match: path parts, trailing dots and spaces, bidi
//     controls (RTLO), NUL and control characters and very long names are
//     dealt with, and what was removed is reported.
//   - ParseRules reads MailScanner's filename.rules.conf /
//     filetype.rules.conf format; RuleSet matches names, file(1)-like
//     descriptions and MIME types the way MailScanner's SweepOther.pm does.
//     Perl-only regular expression syntax is translated where the
//     translation is exact and refused with file:line where it is not.
//   - Sniff detects a file's type from its content (gabriel-vasile/mimetype
//     plus our own PE/ELF/shortcut/registry/self-extractor checks) and
//     describes it in file(1)'s words so filetype rules match.
//   - Scan puts it together: MIME parts, uuencoded files, TNEF winmail.dat
//     (ParseTNEF, written here), zip/gzip/tar/bzip2/xz/7z/rar archives to a
//     configurable depth, Office and PDF active content, with every limit
//     that is reached reported as a Finding instead of passing silently.
//
// The package imports neither chainmail/checks nor the milter: the
// attachment check (checks/attachment) turns a Report into a result.
package attachments
