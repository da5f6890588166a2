package config

import (
	"chainmail/attachments"
	"chainmail/checks/attachment"
	"chainmail/checks/dnsbl"
	"chainmail/checks/uribl"
)

// newURIBL builds the uribl check with the shared MIME limits.
func newURIBL(c uribl.Config, d Deps) (*uribl.Check, error) {
	ck, err := uribl.NewWithOptions(c, d.Resolver, uribl.Options{Walk: d.MIME})
	if err == nil {
		dnsbl.NewSuspendedMetric(d.Registerer).Track("uribl", ck.Set())
	}
	return ck, err
}

// mimeLimits returns the limits of every walk over MIME parts: one
// setting, the attachment check's max_mime_depth and max_mime_parts (its
// defaults when it has no options), so that gtube, uribl and the
// attachment check read the same parts and a message past the limits is
// reported by each of them. Bad options are reported when the attachment
// check is built; here they leave the defaults.
func (f *File) mimeLimits() attachments.WalkOptions {
	cfg := attachment.DefaultConfig()
	for _, c := range f.Checks {
		if c.Name == "attachment" && c.Options.Kind != 0 {
			var o struct {
				MaxMIMEDepth int `yaml:"max_mime_depth"`
				MaxMIMEParts int `yaml:"max_mime_parts"`
			}
			if err := c.Options.Decode(&o); err == nil {
				if o.MaxMIMEDepth > 0 {
					cfg.MaxMIMEDepth = o.MaxMIMEDepth
				}
				if o.MaxMIMEParts > 0 {
					cfg.MaxMIMEParts = o.MaxMIMEParts
				}
			}
		}
	}
	return attachments.WalkOptions{MaxDepth: cfg.MaxMIMEDepth, MaxParts: cfg.MaxMIMEParts}
}
