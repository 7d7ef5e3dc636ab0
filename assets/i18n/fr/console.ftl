# La console du conseiller (tether-console).

# La boîte de Chat.
chat-title = Chat
chat-everyone = Tout le monde
chat-representatives = Représentants
chat-export = Exporter
chat-export-hint = Enregistrer la transcription
chat-saving = Enregistrement de la transcription dans { $path }
chat-larger = Texte plus grand
chat-smaller = Texte plus petit
chat-to-whom = (à { $whom })
chat-to = À
chat-message = Message
chat-message-hint = Saisissez un message
chat-send = Envoyer
chat-not-sent = Non envoyé : { $why }
chat-scripted-messages = Messages prédéfinis
chat-scripted-urls = URL prédéfinies
chat-send-link = Envoyer comme lien
chat-push-url = Envoyer l'URL

# La navigation de droite.
nav-screen = Écran du client
nav-details = Détails
nav-attendees = Participants
nav-notes = Notes
nav-no-picture = Pas encore d'image
nav-double-click = Double-cliquez pour ouvrir la fenêtre du visualiseur
nav-session = Session
nav-came-through = Arrivée par
nav-started = Début
nav-customer = Client
nav-computer = Ordinateur
nav-user = Utilisateur
nav-system = Système
nav-monitors = Écrans
nav-customer-mark = { $name } (client)
nav-in-charge = responsable
nav-invited = invité
nav-masked = masqué
nav-unmasked = non masqué
nav-you = vous
nav-hidden = Caché au client
nav-visible = Le client voit ce nom
nav-session-notes = Notes de session
nav-notes-hint = Notes pour le dossier de la session
nav-save-notes = Enregistrer les notes
nav-not-saved = non enregistrées
nav-saved-by = enregistrées par { $who }

login-title = Console Tether
login-intro = Connectez-vous à votre relais
login-relay = Relais (hôte:port)
login-fingerprint = Empreinte du relais
login-user = Utilisateur
login-password = Mot de passe
login-button = Se connecter

home-title = Assistance à distance
home-intro = Cliquez sur « Générer une clé de session » et donnez le code PIN ou l'URL de session à votre client.
home-intro-queue = Il attend dans votre file ci-dessous jusqu'à ce que vous l'acceptiez.
home-pin = PIN de session
home-copy-pin = Copier le PIN
home-copy-pin-hint = Copier le PIN dans le presse-papiers
home-pin-copied = PIN de session copié dans le presse-papiers
home-url = URL de session
home-copy-url = Copier l'URL
home-copy-url-hint = Copier l'URL dans le presse-papiers
home-url-copied = URL de session copiée dans le presse-papiers
home-expires = Expire
home-customer-runs = Le client exécute
home-copy-command = Copier la commande
home-command-copied = Commande du client copiée dans le presse-papiers

home-expired = expirée
home-expires-in = dans { $min } min

desk-logging-in = Connexion à { $relay } en tant que { $user }…
desk-agent = Conseiller : { $display } ({ $login })
desk-relay = Relais { $relay }
desk-connection-lost = Connexion perdue : { $why }
desk-log-in-again = Se reconnecter
desk-settings = Paramètres
desk-ready = Prêt
desk-generate-key = Générer une clé de session
desk-team = Équipe { $team }
desk-my-queue = Ma file
desk-key-for = Clé pour
desk-home = Accueil
desk-home-waiting = Accueil ({ $n } en attente)
desk-users = Utilisateurs : { $users }
desk-screen = Écran : { $screen }
