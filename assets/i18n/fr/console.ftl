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
