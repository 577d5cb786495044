package appliance

import (
	"context"
	"strings"
	"unicode/utf8"
)

// Key types ("button configurations").
const (
	KeyAccount   = "account"    // a line appearance of an extension; owned by the extension
	KeyBLF       = "blf"        // busy lamp field on an extension or user@host
	KeySpeedDial = "speed_dial" // dials a number
	KeyPark      = "park"       // a parking-lot slot (digits: a lamp key on the slot) or a park feature code (starts with * or #)
	KeyPrefix    = "prefix"     // pre-dials digits
)

// KeyTypes lists the key types in the order the UI offers them.
var KeyTypes = []string{KeyAccount, KeyBLF, KeySpeedDial, KeyPark, KeyPrefix}

// MaxLabel is the longest label a key may carry.
const MaxLabel = 32

// Key is a button configuration that phones' layouts refer to. One key can
// sit on many phones; editing it changes every one of them.
type Key struct {
	ID          int64    `json:"id"`
	Type        string   `json:"type"`
	Value       string   `json:"value"`
	Label       string   `json:"label"`
	ExtensionID int64    `json:"extension_id,omitempty"` // set for account keys
	AttachedTo  []string `json:"attached_to"`            // MACs of phones using it
}

// KeyUpdate holds the fields to change; nil means unchanged.
type KeyUpdate struct {
	Type  *string `json:"type"`
	Value *string `json:"value"`
	Label *string `json:"label"`
}

// KeyFilter selects keys; empty fields match everything. Q matches value or
// label. Attached, when set, keeps keys used (true) or unused (false).
type KeyFilter struct {
	Type     string
	Value    string
	Label    string
	Q        string
	Attached *bool
}

// MaxSearch is the longest search term accepted (SPEC §9).
const MaxSearch = 256

// Validate refuses search terms over MaxSearch characters.
func (f KeyFilter) Validate() error {
	for _, t := range []struct{ field, v string }{{"type", f.Type}, {"value", f.Value}, {"label", f.Label}, {"q", f.Q}} {
		if err := checkSearch(t.field, t.v); err != nil {
			return err
		}
	}
	return nil
}

func checkSearch(field, v string) error {
	if n := utf8.RuneCountInString(v); n > MaxSearch {
		return Errorf(EINVALID, field, "search term too long (%d characters, at most %d)", n, MaxSearch)
	}
	return nil
}

// KeyService manages keys. Errors: EINVALID, ENOTFOUND, ECONFLICT (account
// keys cannot be created, edited or deleted directly; in use without force).
type KeyService interface {
	FindKeys(ctx context.Context, f KeyFilter) ([]*Key, error)
	FindKey(ctx context.Context, id int64) (*Key, error)
	CreateKey(ctx context.Context, k *Key) (*Key, error)
	UpdateKey(ctx context.Context, id int64, upd KeyUpdate) (*Key, error)
	// DeleteKey refuses while phones use the key, unless force, which removes
	// it from their layouts and resyncs them.
	DeleteKey(ctx context.Context, id int64, force bool) error
}

// Normalize trims, defaults the label to the value, and validates a key that
// an admin creates (so never an account key).
func (k *Key) Normalize() error {
	k.Type = strings.ToLower(strings.TrimSpace(k.Type))
	k.Value = strings.TrimSpace(k.Value)
	if k.Type == KeyAccount {
		return Errorf(EINVALID, "type", "account keys are created with their extension; create an extension instead")
	}
	if strings.TrimSpace(k.Label) == "" {
		k.Label = k.Value
	}
	return k.Validate()
}

// Validate checks the type, the value rule of the type, and the label, and
// reports every field that breaks a rule (Errors).
func (k *Key) Validate() error {
	var errs Errors
	switch {
	case isKeyType(k.Type):
		errs.Add(ValidateKeyValue(k.Type, k.Value))
	default:
		errs.Add(Errorf(EINVALID, "type", "%q is not one of %s", k.Type, strings.Join(KeyTypes, ", ")))
		if k.Value == "" {
			errs.Add(Errorf(EINVALID, "value", "required"))
		} else if len(k.Value) > 64 {
			errs.Add(Errorf(EINVALID, "value", "too long (%d characters, at most 64)", len(k.Value)))
		}
	}
	errs.Add(checkText("label", k.Label, MaxLabel))
	return errs.Err()
}

// ValidateKeyValue checks value against the rule of its key type (SPEC §3).
func ValidateKeyValue(typ, value string) error {
	if value == "" {
		if !isKeyType(typ) {
			return Errorf(EINVALID, "type", "%q is not one of %s", typ, strings.Join(KeyTypes, ", "))
		}
		return Errorf(EINVALID, "value", "required")
	}
	if len(value) > 64 {
		return Errorf(EINVALID, "value", "too long (%d characters, at most 64)", len(value))
	}
	switch typ {
	case KeyAccount:
		return ValidateExtensionNumber("value", value)
	case KeyBLF:
		user, host, found := strings.Cut(value, "@")
		if ValidateExtensionNumber("value", user) != nil || (found && !isHost(host)) {
			return Errorf(EINVALID, "value", "%q is not an extension or user@host", value)
		}
	case KeySpeedDial:
		if !allIn(value, digits+"*#+,") {
			return Errorf(EINVALID, "value", "%q is not a dial string (0-9 * # +, and , for a pause)", value)
		}
	case KeyPark:
		if !allIn(value, digits+"*#") || !IsParkSlot(value) && !strings.ContainsAny(value[:1], "*#") {
			return Errorf(EINVALID, "value", "%q is neither a parking-lot slot (digits, e.g. 701) nor a park feature code (starting with * or #, e.g. *85)", value)
		}
	case KeyPrefix:
		if !allIn(value, digits+"*#+") {
			return Errorf(EINVALID, "value", "%q is not a prefix (0-9 * # +)", value)
		}
	default:
		return Errorf(EINVALID, "type", "%q is not one of %s", typ, strings.Join(KeyTypes, ", "))
	}
	return nil
}

// IsParkSlot reports whether a park key's value is a parking-lot slot
// (digits only), which phones show as a lamp key on the slot, rather than a
// park feature code (starting with * or #), which is a plain park button
// (SPEC §3, §5).
func IsParkSlot(value string) bool {
	return value != "" && allIn(value, digits)
}

func isKeyType(t string) bool {
	for _, k := range KeyTypes {
		if k == t {
			return true
		}
	}
	return false
}

// Apply copies the set fields of upd onto k. A label set to blank falls
// back to the value.
func (upd KeyUpdate) Apply(k *Key) {
	if upd.Type != nil {
		k.Type = strings.ToLower(strings.TrimSpace(*upd.Type))
	}
	if upd.Value != nil {
		k.Value = strings.TrimSpace(*upd.Value)
	}
	if upd.Label != nil {
		k.Label = *upd.Label
	}
	if strings.TrimSpace(k.Label) == "" {
		k.Label = k.Value
	}
}
