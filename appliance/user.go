package appliance

import (
	"context"
	"time"
)

// User is an admin of the appliance.
type User struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// Stamp changes whenever the password does (a digest of its hash, never
	// the hash): a cached login is trusted only while the stamp holds.
	Stamp string `json:"-"`
}

// UserService manages admins. Passwords are stored as bcrypt hashes.
// Errors: EINVALID, ENOTFOUND, ECONFLICT (duplicate; removing the last
// admin), EUNAUTHORIZED (Authenticate).
type UserService interface {
	FindUsers(ctx context.Context) ([]*User, error)
	CreateUser(ctx context.Context, name, password string) (*User, error)
	// CreateFirstUser creates an admin only while there is none, atomically
	// (the first-run setup code makes one admin, however many race for
	// it). Errors: ECONFLICT when an admin exists.
	CreateFirstUser(ctx context.Context, name, password string) (*User, error)
	// FindUser returns an admin by name (with its Stamp). Errors: ENOTFOUND.
	FindUser(ctx context.Context, name string) (*User, error)
	// SetPassword changes a password and ends every session of that admin.
	SetPassword(ctx context.Context, name, password string) error
	DeleteUser(ctx context.Context, name string) error
	// Authenticate checks a name and password; a wrong pair is EUNAUTHORIZED
	// whether or not the name exists.
	Authenticate(ctx context.Context, name, password string) (*User, error)
}

// ValidateUserName: 1–32 of a-z A-Z 0-9 . _ - @.
func ValidateUserName(name string) error {
	if name == "" || len(name) > 32 || !allIn(name, extNumberChars+"@") {
		return Errorf(EINVALID, "name", "%q must be 1-32 of a-z, A-Z, 0-9 and . _ - + @", name)
	}
	return nil
}

// ValidatePassword: at least 8 characters, no control characters.
func ValidatePassword(pw string) error {
	if len([]rune(pw)) < 8 {
		return Errorf(EINVALID, "password", "too short (at least 8 characters)")
	}
	return checkText("password", pw, 128)
}

// ValidateUser checks a new admin's name and password together, reporting
// both when both break a rule (Errors).
func ValidateUser(name, password string) error {
	var errs Errors
	errs.Add(ValidateUserName(name))
	errs.Add(ValidatePassword(password))
	return errs.Err()
}
