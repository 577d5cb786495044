package appliance

import (
	"context"
	"strconv"
	"strings"
)

// Extension is a SIP account a phone registers with. Every extension owns
// exactly one account key (Key.Type == KeyAccount, Value == Number), which
// the store creates, renames and deletes with it.
type Extension struct {
	ID          int64  `json:"id"`
	Number      string `json:"number"`
	Name        string `json:"name"`
	AuthUser    string `json:"auth_user"`
	Password    string `json:"-"` // write-only; never serialised
	PasswordSet bool   `json:"password_set"`
	SIPServer   string `json:"sip_server"`
	Transport   string `json:"transport"`
	Voicemail   string `json:"voicemail"`
	AccountKey  int64  `json:"account_key_id"`
}

// ExtensionUpdate holds the fields to change; nil means unchanged.
type ExtensionUpdate struct {
	Number    *string `json:"number"`
	Name      *string `json:"name"`
	AuthUser  *string `json:"auth_user"`
	Password  *string `json:"password"`
	SIPServer *string `json:"sip_server"`
	Transport *string `json:"transport"`
	Voicemail *string `json:"voicemail"`
}

// ExtensionService manages extensions. Errors: EINVALID (field named),
// ENOTFOUND, ECONFLICT (duplicate number; in use by phones without force).
type ExtensionService interface {
	FindExtensions(ctx context.Context) ([]*Extension, error)
	FindExtension(ctx context.Context, id int64) (*Extension, error)
	FindExtensionByNumber(ctx context.Context, number string) (*Extension, error)
	// CreateExtension fills AuthUser (= Number), Transport ("udp") and
	// SIPServer (the configured registrar) when blank, and creates the
	// account key.
	CreateExtension(ctx context.Context, e *Extension) (*Extension, error)
	UpdateExtension(ctx context.Context, id int64, upd ExtensionUpdate) (*Extension, error)
	// DeleteExtension refuses (ECONFLICT naming the phones) while phones use
	// its account key, unless force, which detaches it and resyncs them.
	DeleteExtension(ctx context.Context, id int64, force bool) error
	// ExtensionPhones lists the phones whose line keys hold the extension's
	// account key, as deleting it would leave them. Errors: ENOTFOUND.
	ExtensionPhones(ctx context.Context, id int64) ([]ExtensionPhone, error)
}

// ExtensionPhone is a phone that holds an extension's account key.
// KeepsAccount tells whether it holds another extension's account key as
// well: without it, deleting the extension leaves the phone with no
// account key, so it registers nothing (not ready).
type ExtensionPhone struct {
	MAC          string `json:"mac"`
	Name         string `json:"name"`
	KeepsAccount bool   `json:"keeps_account"`
}

// Title names the phone as Phone.Title does.
func (p ExtensionPhone) Title() string { return (&Phone{MAC: p.MAC, Name: p.Name}).Title() }

// Transports accepted for an extension.
var Transports = []string{"udp", "tcp", "tls"}

const extNumberChars = digits + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._-+"

// ValidateExtensionNumber checks the number rule: 1–32 of 0-9 A-Z a-z . _ - +.
func ValidateExtensionNumber(field, s string) error {
	if s == "" {
		return Errorf(EINVALID, field, "required")
	}
	if len(s) > 32 {
		return Errorf(EINVALID, field, "too long (%d characters, at most 32)", len(s))
	}
	if !allIn(s, extNumberChars) {
		return Errorf(EINVALID, field, "%q may only hold 0-9, A-Z, a-z and . _ - +", s)
	}
	return nil
}

// Normalize applies defaults and trims, then Validate.
func (e *Extension) Normalize(registrar string) error {
	e.Number = strings.TrimSpace(e.Number)
	e.AuthUser = strings.TrimSpace(e.AuthUser)
	e.SIPServer = strings.TrimSpace(e.SIPServer)
	e.Transport = strings.ToLower(strings.TrimSpace(e.Transport))
	e.Voicemail = strings.TrimSpace(e.Voicemail)
	if e.AuthUser == "" {
		e.AuthUser = e.Number
	}
	if e.Transport == "" {
		e.Transport = "udp"
	}
	if e.SIPServer == "" {
		e.SIPServer = registrar
	}
	return e.Validate()
}

// Validate checks every rule of SPEC §3 for an extension and reports
// every field that breaks one (Errors).
func (e *Extension) Validate() error {
	var errs Errors
	badNumber := ValidateExtensionNumber("number", e.Number)
	errs.Add(badNumber)
	errs.Add(checkText("name", e.Name, 64))
	switch {
	case badNumber != nil && e.AuthUser == e.Number:
		// The auth user defaulted to the number, which is marked already.
	case e.AuthUser == "":
		errs.Add(Errorf(EINVALID, "auth_user", "required"))
	case len(e.AuthUser) > 64 || !allIn(e.AuthUser, extNumberChars+"@"):
		errs.Add(Errorf(EINVALID, "auth_user", "%q may only hold 0-9, A-Z, a-z, . _ - + @ (at most 64)", e.AuthUser))
	}
	errs.Add(checkText("password", e.Password, 128))
	if e.SIPServer != "" {
		errs.Add(ValidateHostPort("sip_server", e.SIPServer))
	}
	switch e.Transport {
	case "udp", "tcp", "tls":
	default:
		errs.Add(Errorf(EINVALID, "transport", "%q is not one of udp, tcp, tls", e.Transport))
	}
	if e.Voicemail != "" && (len(e.Voicemail) > 32 || !allIn(e.Voicemail, digits+"*#+")) {
		errs.Add(Errorf(EINVALID, "voicemail", "%q is not a feature code (0-9 * # +, at most 32)", e.Voicemail))
	}
	return errs.Err()
}

// Apply copies the set fields of upd onto e.
func (upd ExtensionUpdate) Apply(e *Extension) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = strings.TrimSpace(*src)
		}
	}
	set(&e.Number, upd.Number)
	if upd.Name != nil {
		e.Name = *upd.Name
	}
	set(&e.AuthUser, upd.AuthUser)
	if upd.Password != nil {
		e.Password = *upd.Password
	}
	set(&e.SIPServer, upd.SIPServer)
	if upd.Transport != nil {
		e.Transport = strings.ToLower(strings.TrimSpace(*upd.Transport))
	}
	set(&e.Voicemail, upd.Voicemail)
	if e.AuthUser == "" { // blank means "the number", as on create
		e.AuthUser = e.Number
	}
	if e.Transport == "" {
		e.Transport = "udp"
	}
}

// ValidateHostPort checks "host" or "host:port" with port 1–65535.
func ValidateHostPort(field, s string) error {
	host, port := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return Errorf(EINVALID, field, "%q has a bad port (1-65535)", s)
		}
	}
	if !isHost(host) {
		return Errorf(EINVALID, field, "%q is not a host name or IPv4 address (host or host:port)", s)
	}
	return nil
}

// AccountLabel is the label an extension's account key carries: its name, or
// its number when it has none.
func (e *Extension) AccountLabel() string {
	if e.Name != "" {
		if len([]rune(e.Name)) > MaxLabel {
			return string([]rune(e.Name)[:MaxLabel])
		}
		return e.Name
	}
	return e.Number
}
