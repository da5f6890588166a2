package attachment

import (
	"fmt"

	"chainmail/attachments"

	"gopkg.in/yaml.v3"
)

// PolicyAction is what the options of the message-format policy ask for
// a finding of attachments.CategoryPolicy: allow (logged, delivered),
// quarantine or reject. The check only reports it, in the facts refused
// and held; the default rules attachment-too-large,
// attachment-format-refused and attachment-format-held act on them.
type PolicyAction string

// Policy actions.
const (
	PolicyAllow      PolicyAction = "allow"
	PolicyQuarantine PolicyAction = "quarantine"
	PolicyReject     PolicyAction = "reject"
)

// UnmarshalYAML reads allow, quarantine or reject.
func (a *PolicyAction) UnmarshalYAML(n *yaml.Node) error {
	switch v := PolicyAction(n.Value); v {
	case PolicyAllow, PolicyQuarantine, PolicyReject:
		*a = v
		return nil
	}
	return fmt.Errorf("line %d: attachment: unknown action %q (want allow, quarantine or reject)", n.Line, n.Value)
}

// policyOf is the action the options give a policy finding ("" for a
// finding of another category).
func (c *Check) policyOf(f attachments.Finding) PolicyAction {
	if f.Category != attachments.CategoryPolicy {
		return ""
	}
	var a PolicyAction
	switch f.Kind {
	case attachments.KindMessagePartial:
		a = c.cfg.PartialMessages
	case attachments.KindMessageExternalBody:
		a = c.cfg.ExternalBody
	case attachments.KindMessageEncrypted:
		a = c.cfg.EncryptedMessages
	case attachments.KindMessageSigned:
		a = c.cfg.SignedMessages
	case attachments.KindAttachmentTooLarge:
		a = c.cfg.OversizeAttachments
	}
	if a == "" {
		a = PolicyAllow
	}
	return a
}

// silent: a finding neither logged nor scored. A signature the policy
// allows is ordinary mail whose content was scanned; every other policy
// finding is logged, allowed or not (an encrypted message delivered
// unscanned is said so).
func (c *Check) silent(f attachments.Finding) bool {
	return f.Kind == attachments.KindMessageSigned && c.policyOf(f) == PolicyAllow
}

// Symbols of the policy findings (score 0: the options decide, not the
// spam score; a site can score them with the check's scores setting).
const (
	SymPartial      = "ATTACHMENT_MESSAGE_PARTIAL"
	SymExternalBody = "ATTACHMENT_EXTERNAL_BODY"
	SymEncryptedMsg = "ATTACHMENT_ENCRYPTED_MESSAGE"
	SymSignedMsg    = "ATTACHMENT_SIGNED_MESSAGE"
	SymTooLarge     = "ATTACHMENT_TOO_LARGE"
)

func policySymbol(k attachments.FindingKind) string {
	switch k {
	case attachments.KindMessagePartial:
		return SymPartial
	case attachments.KindMessageExternalBody:
		return SymExternalBody
	case attachments.KindMessageEncrypted:
		return SymEncryptedMsg
	case attachments.KindMessageSigned:
		return SymSignedMsg
	}
	return SymTooLarge
}
