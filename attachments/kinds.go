package attachments

import "fmt"

// FindingKind is a Finding's short stable name ("encrypted-archive",
// "vba-macro", "name-bidi", …), as log lines and facts spell it. It is a
// number, not a string, so that a misspelt kind does not compile: code
// names kinds by these constants only.
type FindingKind uint8

// Finding kinds.
const (
	_ FindingKind = iota
	// Limits, encodings and the MIME structure.
	KindMIMEStructure
	KindLimitMemory
	KindLimitTotal
	KindLimitAttachments
	KindLimitSize
	KindLimitDepth
	KindLimitRatio
	KindLimitEntries
	KindUnknownEncoding
	KindReadError
	KindBadEncoding
	// Names and contents that disagree.
	KindNameBidi
	KindNameNUL
	KindNameTypeMismatch
	// Archives.
	KindArchiveCorrupt
	KindArchiveSizeLie
	KindArchiveUnsupported
	KindEncryptedArchive
	KindZipOverlap
	KindZipNameMismatch
	KindTNEFCorrupt
	KindOLECorrupt
	// KindZipDirectoryMismatch: a zip's records disagree (entry counts,
	// a second central directory, local headers the directory does not
	// list), so that extractors that trust different records produce
	// different files. Every file any of them produces is checked.
	KindZipDirectoryMismatch
	// Active content (see Active).
	KindVBA
	KindVBAAutoExec
	KindXLM
	KindDDE
	KindExternalTemplate
	KindOLEPackage
	KindRTFObject
	KindPDFJavaScript
	KindPDFLaunch
	KindPDFEmbeddedFile
	KindPDFAutoAction
	KindEncryptedDoc
	// Message formats and sizes a site's policy decides on
	// (CategoryPolicy, see format.go).
	KindMessagePartial
	KindMessageExternalBody
	KindMessageEncrypted
	KindMessageSigned
	KindAttachmentTooLarge
)

var kindNames = [...]string{
	KindMIMEStructure:        "mime-structure",
	KindLimitMemory:          "limit-memory",
	KindLimitTotal:           "limit-total",
	KindLimitAttachments:     "limit-attachments",
	KindLimitSize:            "limit-size",
	KindLimitDepth:           "limit-depth",
	KindLimitRatio:           "limit-ratio",
	KindLimitEntries:         "limit-entries",
	KindUnknownEncoding:      "unknown-encoding",
	KindReadError:            "read-error",
	KindBadEncoding:          "bad-encoding",
	KindNameBidi:             "name-bidi",
	KindNameNUL:              "name-nul",
	KindNameTypeMismatch:     "name-type-mismatch",
	KindArchiveCorrupt:       "archive-corrupt",
	KindArchiveSizeLie:       "archive-size-lie",
	KindArchiveUnsupported:   "archive-unsupported",
	KindEncryptedArchive:     "encrypted-archive",
	KindZipOverlap:           "zip-overlap",
	KindZipNameMismatch:      "zip-name-mismatch",
	KindTNEFCorrupt:          "tnef-corrupt",
	KindOLECorrupt:           "ole-corrupt",
	KindZipDirectoryMismatch: "zip-directory-mismatch",
	KindVBA:                  "vba-macro",
	KindVBAAutoExec:          "vba-autoexec",
	KindXLM:                  "xlm-macro",
	KindDDE:                  "dde",
	KindExternalTemplate:     "external-template",
	KindOLEPackage:           "ole-package",
	KindRTFObject:            "rtf-object",
	KindPDFJavaScript:        "pdf-javascript",
	KindPDFLaunch:            "pdf-launch",
	KindPDFEmbeddedFile:      "pdf-embedded-file",
	KindPDFAutoAction:        "pdf-auto-action",
	KindEncryptedDoc:         "encrypted-document",
	KindMessagePartial:       "message-partial",
	KindMessageExternalBody:  "message-external-body",
	KindMessageEncrypted:     "message-encrypted",
	KindMessageSigned:        "message-signed",
	KindAttachmentTooLarge:   "attachment-too-large",
}

// String is the kind's stable name.
func (k FindingKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// MarshalText writes the kind's name (JSON, YAML).
func (k FindingKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// ParseFindingKind returns the kind named s; ok is false for no kind.
func ParseFindingKind(s string) (k FindingKind, ok bool) {
	for i, n := range kindNames {
		if n != "" && n == s {
			return FindingKind(i), true
		}
	}
	return 0, false
}
