package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/aws/smithy-go"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/netguard"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/sftp"
)

// Problem is a failure as the API tells it: Code is stable, English
// snake_case, for callers to branch on; Message is a French sentence
// saying what the owner must change. Both come from typed errors and
// sentinels (errors.As, errors.Is), never from an error's text.
type Problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// HostKeyFingerprint and HostKeyType are the SFTP host key the server
	// presented (host_key_unconfirmed, host_key_mismatch): the owner
	// confirms the fingerprint by sending it back as hostKeyFingerprint.
	HostKeyFingerprint string `json:"hostKeyFingerprint,omitempty"`
	HostKeyType        string `json:"hostKeyType,omitempty"`
}

// Problem codes.
const (
	CodeLocationRefused     = "location_refused"
	CodeHostKeyUnconfirmed  = "host_key_unconfirmed"
	CodeHostKeyMismatch     = "host_key_mismatch"
	CodeHostKeyInvalid      = "host_key_invalid"
	CodeSFTPAuthFailed      = "sftp_auth_failed"
	CodeSFTPKeyUnreadable   = "sftp_key_unreadable"
	CodeSFTPKeyPassphrase   = "sftp_key_passphrase"
	CodeSFTPNoCredentials   = "sftp_no_credentials"
	CodeSSHHandshakeFailed  = "ssh_handshake_failed"
	CodeS3AccessDenied      = "s3_access_denied"
	CodeS3NoSuchBucket      = "s3_no_such_bucket"
	CodeS3InvalidAccessKey  = "s3_invalid_access_key"
	CodeS3SignatureMismatch = "s3_signature_mismatch"
	CodeS3WrongRegion       = "s3_wrong_region"
	CodeS3Error             = "s3_error"
	CodeFTPAuthFailed       = "ftp_auth_failed"
	CodeUnreachable         = "storage_unreachable"
	CodeTimeout             = "storage_timeout"
	CodeNotFound            = "storage_path_not_found"
	CodeNotAListing         = "not_a_listing"
	CodeTooLarge            = "storage_too_large"
	CodeNoTiles             = "no_tiles"
	CodeIncomplete          = "scan_incomplete"
	CodeShrunk              = "scan_shrunk"
	CodeStorageError        = "storage_error"
	CodeDuplicate           = "duplicate_location"
	// CodeShareKeyInvalid: a share link's key that is not the storage's
	// current one (revoked, mistyped, another storage's).
	CodeShareKeyInvalid = "share_key_invalid"
	// CodeDownloadTokenInvalid: a download link expired, or used for
	// another file or storage than its own.
	CodeDownloadTokenInvalid = "download_token_invalid"
)

// explain tells err, met while reaching or scanning r, as a Problem.
func (s *Service) explain(err error, r Record) Problem {
	var (
		unknown   *sftp.HostKeyUnknownError
		mismatch  *sftp.HostKeyMismatchError
		auth      *sftp.AuthError
		handshake *sftp.HandshakeError
		api       smithy.APIError
		status    interface{ HTTPStatusCode() int }
		ftpReply  *textproto.Error
		dns       *net.DNSError
		op        *net.OpError
	)
	bucket, endpoint := s.s3Names(r)
	switch {
	case errors.Is(err, netguard.ErrRefused) || errors.Is(err, ErrRefused):
		return Problem{Code: CodeLocationRefused, Message: "emplacement refusé par le service : les stockages sur un réseau privé, local ou de bouclage (et les dossiers locaux) ne sont pas joints, pour ne pas ouvrir le réseau du service ; donnez une adresse publique, ou démarrez le service avec --allow-private-networks (--allow-file-storages pour un dossier local)."}
	case errors.As(err, &unknown):
		return Problem{Code: CodeHostKeyUnconfirmed, HostKeyFingerprint: unknown.Fingerprint, HostKeyType: unknown.Type,
			Message: fmt.Sprintf("clé d'hôte du serveur SFTP %s à confirmer : il présente la clé %s (%s) ; vérifiez cette empreinte auprès de l'administrateur du serveur (ssh-keygen -l -f sur la clé publique d'hôte), puis renvoyez la demande, ou un PATCH du stockage, avec \"hostKeyFingerprint\": %q.",
				unknown.Addr, unknown.Fingerprint, unknown.Type, unknown.Fingerprint)}
	case errors.As(err, &mismatch):
		return Problem{Code: CodeHostKeyMismatch, HostKeyFingerprint: mismatch.Presented, HostKeyType: mismatch.Type,
			Message: fmt.Sprintf("clé d'hôte refusée : le serveur SFTP %s a présenté la clé %s (%s) au lieu de celle enregistrée, %s ; si l'administrateur du serveur confirme l'avoir changée, enregistrez la nouvelle empreinte par un PATCH du stockage avec \"hostKeyFingerprint\" ; sinon, la connexion est peut-être interceptée.",
				mismatch.Addr, mismatch.Presented, mismatch.Type, strings.Join(mismatch.Expected, " ou "))}
	case errors.Is(err, sftp.ErrHostKeyInvalid):
		return Problem{Code: CodeHostKeyInvalid, Message: "clé d'hôte illisible : donnez dans hostKeyFingerprint l'empreinte SHA256 telle que ssh-keygen -l l'affiche (« SHA256:… »), ou dans hostKey la clé publique du serveur (« ssh-ed25519 AAAA… », une ligne de ssh-keyscan)."}
	case errors.As(err, &auth):
		return Problem{Code: CodeSFTPAuthFailed, Message: fmt.Sprintf("identifiant ou clé refusés par le serveur SFTP : vérifiez le nom d'utilisateur de l'URL (sftp://utilisateur@%s/…), le mot de passe ou la clé privée (et sa phrase de passe), et que la clé publique correspondante est autorisée sur le serveur (authorized_keys).", auth.Addr)}
	case errors.Is(err, sftp.ErrKeyPassphrase):
		return Problem{Code: CodeSFTPKeyPassphrase, Message: "la clé privée SFTP est chiffrée et sa phrase de passe manque ou est fausse : donnez-la dans credentials.sftpPassphrase."}
	case errors.Is(err, sftp.ErrKeyUnreadable):
		return Problem{Code: CodeSFTPKeyUnreadable, Message: "clé privée SFTP illisible : donnez dans credentials.sftpPrivateKey la clé privée entière, au format PEM ou OpenSSH (de « -----BEGIN … PRIVATE KEY----- » à la ligne « -----END … ----- »), pas la clé publique."}
	case errors.Is(err, sftp.ErrNoCredentials):
		return Problem{Code: CodeSFTPNoCredentials, Message: "aucun identifiant SFTP : donnez credentials.password ou credentials.sftpPrivateKey."}
	case errors.As(err, &handshake):
		return Problem{Code: CodeSSHHandshakeFailed, Message: fmt.Sprintf("la négociation SSH avec %s a échoué avant toute authentification : vérifiez l'hôte et le port de l'URL (est-ce bien un serveur SFTP ?) ; sinon, le serveur n'accepte aucun des algorithmes que le service propose.", handshake.Addr)}
	case errors.As(err, &api):
		return s3Problem(api.ErrorCode(), bucket, endpoint, r.Credentials.S3AccessKey != "")
	case errors.As(err, &status) && (status.HTTPStatusCode() == http.StatusForbidden || status.HTTPStatusCode() == http.StatusUnauthorized) && r.scheme() == "s3":
		return s3Problem("AccessDenied", bucket, endpoint, r.Credentials.S3AccessKey != "")
	case errors.As(err, &ftpReply) && ftpReply.Code == 530:
		return Problem{Code: CodeFTPAuthFailed, Message: "identifiant ou mot de passe refusés par le serveur FTP : vérifiez le nom d'utilisateur de l'URL (ftp://utilisateur@serveur/…) et credentials.password."}
	case errors.As(err, &dns):
		return Problem{Code: CodeUnreachable, Message: fmt.Sprintf("le nom %q est inconnu : vérifiez l'adresse %s.", dns.Name, addressField(r))}
	case errors.As(err, &op) && op.Op == "dial":
		return Problem{Code: CodeUnreachable, Message: fmt.Sprintf("le stockage ne répond pas à %s : vérifiez l'adresse et le port %s, et que le serveur est en marche et joignable depuis le service.", dialAddr(op), addressField(r))}
	case errors.Is(err, context.DeadlineExceeded):
		return Problem{Code: CodeTimeout, Message: "le stockage n'a pas répondu à temps : vérifiez qu'il est en marche et joignable depuis le service, puis relancez."}
	case errors.Is(err, indexer.ErrNoTiles):
		return Problem{Code: CodeNoTiles, Message: "aucune dalle (.jp2, .tif, .tiff) dans ce stockage : vérifiez le chemin de l'URL, qui doit mener au dossier des dalles ou à un dossier au-dessus."}
	case errors.Is(err, indexer.ErrIncomplete):
		return Problem{Code: CodeIncomplete, Message: "analyse interrompue : le stockage a échoué sur trop de dalles ; le rapport de l'essai (report) dit lesquelles. Les sorties précédentes sont gardées ; relancez quand le stockage répond de nouveau."}
	case errors.Is(err, indexer.ErrShrunk):
		return Problem{Code: CodeShrunk, Message: "analyse non publiée : le nombre de dalles lisibles est tombé sous la moitié de celui des sorties publiées ; vérifiez que la livraison est complète (le chemin de l'URL, les droits de lecture, le point d'accès). Si elle a vraiment diminué, l'administrateur du service relance l'analyse avec POST /storages/{id}/scan?allowShrink=true."}
	case errors.Is(err, storage.ErrTooLarge):
		return Problem{Code: CodeTooLarge, Message: "stockage trop grand pour une analyse (trop d'objets ou de dossiers) : donnez dans l'URL le dossier de la livraison plutôt qu'un dossier au-dessus."}
	case errors.Is(err, storage.ErrNotAListing):
		return Problem{Code: CodeNotAListing, Message: "l'adresse ne mène pas à une liste de fichiers que le service sait lire : donnez l'URL d'un dossier dont le serveur affiche l'index (autoindex)."}
	case errors.Is(err, storage.ErrNotFound):
		return Problem{Code: CodeNotFound, Message: "le dossier de l'URL n'existe pas sur le stockage : vérifiez son chemin."}
	}
	return Problem{Code: CodeStorageError, Message: "le stockage n'a pas pu être lu : " + scrubber(r)(err.Error())} // never a secret, stored or shown
}

// s3Problem tells an S3 error code; keys says whether the storage has
// keys or reads anonymously.
func s3Problem(code, bucket, endpoint string, keys bool) Problem {
	switch code {
	case "AccessDenied", "Forbidden", "AllAccessDisabled", "AccountProblem":
		if !keys {
			return Problem{Code: CodeS3AccessDenied, Message: fmt.Sprintf("accès anonyme refusé par le stockage S3 %s (%s) : le compartiment « %s » n'est pas public ; donnez les clés de l'hébergeur dans credentials.s3AccessKey et credentials.s3SecretKey.", endpoint, code, bucket)}
		}
		return Problem{Code: CodeS3AccessDenied, Message: fmt.Sprintf("accès refusé par le stockage S3 %s (%s) : les clés n'ont pas le droit de lister et lire le compartiment « %s » ; demandez ces droits à l'hébergeur (s3:ListBucket, s3:GetObject) ou donnez d'autres clés (credentials.s3AccessKey, credentials.s3SecretKey).", endpoint, code, bucket)}
	case "NoSuchBucket":
		return Problem{Code: CodeS3NoSuchBucket, Message: fmt.Sprintf("le compartiment « %s » n'existe pas sur le stockage S3 %s : vérifiez son nom dans l'URL (s3://compartiment/dossier/), et le point d'accès (s3Endpoint).", bucket, endpoint)}
	case "InvalidAccessKeyId", "XAdminUserNotFound": // the second, versitygw's
		return Problem{Code: CodeS3InvalidAccessKey, Message: fmt.Sprintf("clé d'accès inconnue du stockage S3 %s (InvalidAccessKeyId) : vérifiez credentials.s3AccessKey, et que le point d'accès (s3Endpoint) est celui de l'hébergeur qui l'a délivrée.", endpoint)}
	case "SignatureDoesNotMatch":
		return Problem{Code: CodeS3SignatureMismatch, Message: fmt.Sprintf("clé secrète refusée par le stockage S3 %s (SignatureDoesNotMatch) : la clé d'accès est connue mais la clé secrète ne lui correspond pas ; vérifiez credentials.s3SecretKey.", endpoint)}
	case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException", "InvalidRegion":
		return Problem{Code: CodeS3WrongRegion, Message: fmt.Sprintf("le compartiment « %s » n'est pas dans la région demandée (%s) : donnez sa région dans s3Region (par exemple eu-west-3, gra, fr-par), et le point d'accès de cette région dans s3Endpoint.", bucket, code)}
	}
	return Problem{Code: CodeS3Error, Message: fmt.Sprintf("le stockage S3 %s a refusé la demande (%s) : vérifiez le compartiment « %s », les clés, le point d'accès (s3Endpoint) et la région (s3Region).", endpoint, code, bucket)}
}

// s3Names are the bucket and the endpoint of r as messages name them.
func (s *Service) s3Names(r Record) (bucket, endpoint string) {
	if r.scheme() != "s3" {
		return "", ""
	}
	if u, err := storage.ParseLocation(r.URL); err == nil {
		bucket = u.Host
	}
	endpoint = s.s3Endpoint(r)
	if endpoint == "" {
		endpoint = "d'AWS"
	}
	return bucket, endpoint
}

// addressField says where the address to check is.
func addressField(r Record) string {
	if r.scheme() == "s3" {
		return "du point d'accès (s3Endpoint)"
	}
	return "de l'URL"
}

func dialAddr(op *net.OpError) string {
	if op.Addr != nil {
		return op.Addr.String()
	}
	return "l'adresse donnée"
}

// scheme is r's URL scheme, lower case.
func (r Record) scheme() string {
	scheme, _, ok := strings.Cut(r.URL, "://")
	if !ok {
		return "file"
	}
	return strings.ToLower(scheme)
}
