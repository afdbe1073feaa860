// Package access is who may do what in Slipway: organizations, their teams
// and roles, and the API tokens people and robots use. A repository and its
// image namespace belong to one organization; a token is scoped to one
// organization with a role, and never does more than its account's teams
// allow there. The bootstrap admin (the token in the data dir) is above
// every organization.
//
// The records live in a JetStream key-value bucket of their own (Directory);
// the rules are plain functions over them (Can, MayIssue), so that they can
// be tested without a server.
package access

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Role is what a team, and a token, may do in an organization. The order
// matters: each role includes the ones before it.
type Role string

// Roles, weakest first.
const (
	None  Role = ""
	Read  Role = "read"  // see builds and logs, pull images
	Write Role = "write" // trigger, cancel, rebuild, manage rules and hooks
	Admin Role = "admin" // members, tokens, registry credentials, delete
)

func (r Role) rank() int {
	switch r {
	case Read:
		return 1
	case Write:
		return 2
	case Admin:
		return 3
	}
	return 0
}

// Includes reports whether r allows what need allows.
func (r Role) Includes(need Role) bool { return r.rank() >= need.rank() && r.rank() > 0 }

// ParseRole accepts read, write and admin.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.rank() > 0 {
		return r, nil
	}
	return None, invalid("role: want read, write or admin, got %q", s)
}

func lesser(a, b Role) Role {
	if a.rank() < b.rank() {
		return a
	}
	return b
}

// Errors of the directory.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrUnauthenticated is a token that is unknown, revoked or expired.
	ErrUnauthenticated = errors.New("unknown, revoked or expired token")
)

// Invalid is a request that breaks a naming or role rule; the caller can
// fix it.
type Invalid struct{ msg string }

func (e Invalid) Error() string { return e.msg }

func invalid(format string, a ...any) error { return Invalid{fmt.Sprintf(format, a...)} }

// IsInvalid reports whether err is an Invalid request.
func IsInvalid(err error) bool {
	var i Invalid
	return errors.As(err, &i)
}

// Sealer seals secrets before they are stored and opens them after (package
// seal); context binds a sealed value to where it is kept.
type Sealer interface {
	Seal(plain, context string) (string, error)
	Open(sealed, context string) (string, error)
}

// SetRegistry stores the org's login for a registry host, its password
// sealed.
func (o *Org) SetRegistry(host string, login RegistryLogin, keys Sealer) error {
	sealed, err := keys.Seal(login.Password, o.registryContext(host))
	if err != nil {
		return fmt.Errorf("seal the %s password: %w", host, err)
	}
	if o.Registries == nil {
		o.Registries = map[string]RegistryLogin{}
	}
	o.Registries[host] = RegistryLogin{Username: login.Username, Password: sealed}
	return nil
}

// RegistryLogin is the org's login for host, its password opened; ok false
// when it has none.
func (o Org) RegistryLogin(host string, keys Sealer) (login RegistryLogin, ok bool, err error) {
	l, ok := o.Registries[host]
	if !ok {
		return RegistryLogin{}, false, nil
	}
	pass, err := keys.Open(l.Password, o.registryContext(host))
	if err != nil {
		return RegistryLogin{}, false, fmt.Errorf("open the %s password of %s: %w", host, o.Name, err)
	}
	return RegistryLogin{Username: l.Username, Password: pass}, true, nil
}

func (o Org) registryContext(host string) string { return "org/" + o.Name + "/registry/" + host }

// Org is an organization: the owner of repositories and of an image
// namespace (<registry>/<org>/...), with its teams.
type Org struct {
	Name      string          `json:"name"`
	CreatedAt time.Time       `json:"created_at"`
	Teams     map[string]Team `json:"teams"`
	// PublicImages are repositories of the org's image namespace (such
	// as acme/base) that anyone may pull, besides the repositories
	// registered as public.
	PublicImages []string `json:"public_images,omitempty"`
	// Registries are the logins for the registries the org's images name,
	// by host; the passwords are sealed.
	Registries map[string]RegistryLogin `json:"registries,omitempty"`
}

// Team is a group of accounts with one role in its organization.
type Team struct {
	Role    Role     `json:"role"`
	Members []string `json:"members"`
}

// RegistryLogin is a user name and password (or access token) for a
// registry.
type RegistryLogin struct {
	Username string `json:"username"`
	Password string `json:"password,omitempty"`
}

// OwnersTeam is the team every organization starts with: its admins.
const OwnersTeam = "owners"

// RoleOf is account's strongest team role in o.
func (o Org) RoleOf(account string) Role {
	best := None
	for _, t := range o.Teams {
		if slices.Contains(t.Members, account) && t.Role.rank() > best.rank() {
			best = t.Role
		}
	}
	return best
}

// IsPublic reports whether anyone may pull repository (acme/app) by the
// org's own list.
func (o Org) IsPublic(repository string) bool { return slices.Contains(o.PublicImages, repository) }

// orgRE is a name that is also one path component of an image name.
var orgRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// ValidOrg checks an organization name.
func ValidOrg(name string) error {
	if len(name) > 64 || !orgRE.MatchString(name) {
		return invalid("organization: want lowercase letters, digits and . _ - between them (at most 64), got %q", name)
	}
	return nil
}

// OrgOf is the organization a repository's full name (owner/name) belongs
// to when it names none: its owner, lowercased, as Docker Hub namespaces
// are.
func OrgOf(fullName string) string {
	owner, _, _ := strings.Cut(fullName, "/")
	return strings.ToLower(owner)
}

// accountRE is a user name, or a robot's org+name.
var accountRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}(\+[a-z0-9][a-z0-9_.-]{0,63})?$`)

// ValidAccount checks a user name (alice) or a robot name (acme+deployer:
// robots are named after their organization).
func ValidAccount(name string) error {
	if !accountRE.MatchString(name) {
		return invalid("account: want a lowercase user name such as alice, or a robot such as acme+deploy, got %q", name)
	}
	return nil
}

// IsRobot reports whether account is a robot (org+name).
func IsRobot(account string) bool { return strings.Contains(account, "+") }

// ValidTeam checks a team's name, role and members, robots only of org.
func ValidTeam(org, name string, t Team) error {
	if !orgRE.MatchString(name) || len(name) > 64 {
		return invalid("team: want lowercase letters, digits and . _ -, got %q", name)
	}
	if _, err := ParseRole(string(t.Role)); err != nil {
		return err
	}
	for _, m := range t.Members {
		if err := ValidAccount(m); err != nil {
			return err
		}
		if robotOrg, _, ok := strings.Cut(m, "+"); ok && robotOrg != org {
			return invalid("members: robot %q belongs to organization %q, not %q", m, robotOrg, org)
		}
	}
	return nil
}
