package attachments

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// CategoryPolicy: a message format or size a site may refuse by policy
// (a fragment of a message, a body stored elsewhere, an encrypted or
// signed message, a file over the size limit). Not a danger found in the
// content: the attachment check's options decide what each one costs.
const CategoryPolicy Category = "policy"

// PGP armour lines (RFC 4880 §6.2) that mark inline PGP in message text.
var (
	pgpMessage = []byte("-----BEGIN PGP MESSAGE-----")
	pgpSigned  = []byte("-----BEGIN PGP SIGNED MESSAGE-----")
)

// formats reports, anywhere in the MIME tree (the top level too), the
// message formats of CategoryPolicy: message/partial (RFC 2046 §5.2.2),
// message/external-body (§5.2.3), S/MIME (RFC 8551) and PGP/MIME
// (RFC 3156) encryption and signatures. One finding per entity.
func (s *scanner) formats() {
	s.rep.Tree.Root.walk(func(e *Entity) {
		add := func(k FindingKind, detail string) {
			s.add(Finding{Category: CategoryPolicy, Kind: k, Path: e.Path, File: e.Filename(), Detail: detail})
		}
		switch e.MediaType {
		case "message/partial":
			add(KindMessagePartial, fmt.Sprintf("message/partial: fragment %s of %s of message %q, reassembled by the reader's client, never scanned whole",
				orQ(e.Params["number"]), orQ(e.Params["total"]), truncateString(e.Params["id"], 80)))
		case "message/external-body":
			where := e.Params["access-type"]
			if u := e.Params["url"]; u != "" {
				where += " " + u
			} else if n := e.Params["name"]; n != "" {
				where += " " + e.Params["site"] + ":" + e.Params["directory"] + "/" + n
			}
			add(KindMessageExternalBody, fmt.Sprintf("message/external-body: content fetched by the reader's client from elsewhere (%s), never scanned", truncateString(strings.TrimSpace(where), 120)))
		case "multipart/encrypted":
			add(KindMessageEncrypted, fmt.Sprintf("encrypted message (multipart/encrypted, %s): content not scanned", orQ(e.Params["protocol"])))
		case "multipart/signed":
			add(KindMessageSigned, fmt.Sprintf("signed message (multipart/signed, %s)", orQ(e.Params["protocol"])))
		case "application/pkcs7-mime", "application/x-pkcs7-mime":
			switch t := strings.ToLower(e.Params["smime-type"]); t {
			case "", "enveloped-data", "authenveloped-data":
				add(KindMessageEncrypted, "encrypted message (S/MIME "+orQ(t)+"): content not scanned")
			case "signed-data":
				add(KindMessageSigned, "signed message (S/MIME signed-data)")
			}
		case "application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature":
			if e.Parent == nil || e.Parent.MediaType != "multipart/signed" {
				add(KindMessageSigned, "detached signature ("+e.MediaType+")")
			}
		}
	})
}

// inlinePGP reports inline PGP in the text of a message (not in an
// attached file): data is the decoded text, or its first bytes.
func (s *scanner) inlinePGP(e *Entity, data []byte) {
	switch {
	case bytes.Contains(data, pgpMessage):
		s.add(Finding{Category: CategoryPolicy, Kind: KindMessageEncrypted, Path: e.Path, Detail: "encrypted message (inline PGP in " + e.MediaType + "): content not scanned"})
	case bytes.Contains(data, pgpSigned):
		s.add(Finding{Category: CategoryPolicy, Kind: KindMessageSigned, Path: e.Path, Detail: "signed message (inline PGP in " + e.MediaType + ")"})
	}
}

// oversize reports every file that is not inside an archive (a MIME
// part, a uuencoded block, a TNEF attachment) whose decoded size is over
// MaxAttachmentSize. Archive members are not measured: what the mailbox
// stores and the reader downloads is the archive, and what it unpacks to
// is bounded by MaxRatio and MaxTotal.
func (s *scanner) oversize() {
	limit := s.opts.MaxAttachmentSize
	if limit <= 0 {
		return
	}
	for _, f := range s.rep.Files {
		if f.Member || f.Size <= limit {
			continue
		}
		size := f.Size
		if f.Entity != nil && f.Path == f.Entity.Path && f.Container == "" {
			// A part's size may be an estimate from its encoded length
			// (never below the decoded one): count the decoded bytes.
			n, err := io.Copy(io.Discard, f.Entity.Open())
			if err == nil {
				size = n
			}
			if size <= limit {
				continue
			}
		}
		s.add(Finding{Category: CategoryPolicy, Kind: KindAttachmentTooLarge, Path: f.Path, File: f.Name,
			Detail: fmt.Sprintf("%s of %d bytes, over the %d bytes allowed per attachment", firstField(orDefault(f.Type.Description, "file")), size, limit)})
	}
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return truncateString(s, 60)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
