package appliance

import "context"

// Services bundles the domain services that the edges (webui, tftpd, sip,
// dhcpopt, the CLI) are handed by cmd/provbox.
type Services struct {
	Extensions ExtensionService
	Locations  LocationService
	Phones     PhoneService
	Keys       KeyService
	Users      UserService
	Import     ImportService
	Sync       SyncService
	Discovery  DiscoveryService
	Sessions   SessionService
	Settings   SettingsService
	Leases     LeaseService // DHCP leases and reservations
	Audit      AuditService // who changed what, and which phones it reached
	Events     *EventBus
}

// SettingsService gives the appliance-wide settings: the config file's
// (BaseSettings), the Settings page's overrides, and the two merged
// (Settings). Errors of SetOverrides: EINVALID.
type SettingsService interface {
	Settings() Settings
	BaseSettings() Settings
	Overrides() SettingsOverrides
	SetOverrides(ctx context.Context, o SettingsOverrides) error
}
