use super::*;

impl Vault {
    /// Creates a new vault with a TOTP factor and returns recovery codes to show once.
    pub fn create(&mut self, opts: CreateOptions, actor: &Actor) -> Result<Created, VaultError> {
        if self.exists()? {
            return Err(VaultError::AlreadyExists(self.catalog.path().to_path_buf()));
        }
        let now = now_unix() as u64;
        let step = opts
            .totp
            .check(&opts.totp_code, now)?
            .ok_or(VaultError::CodeMismatch)?;
        let vault_id = uuid::Uuid::new_v4().simple().to_string();
        let keystore = Keystore::new(opts.keystore, &vault_id);
        keystore.probe(&self.catalog)?;

        let identity = x25519::Identity::generate();
        let recipient = identity.to_public().to_string();
        let kdf_salt: [u8; 16] = random();
        let pass_key = kdf::derive(
            opts.passphrase.expose_secret().as_bytes(),
            &kdf_salt,
            &opts.kdf,
        )?;
        let device = Zeroizing::new(random::<32>());

        let mut header = Header {
            version: HEADER_VERSION,
            recipient,
            kdf: opts.kdf,
            kdf_salt: hex(&kdf_salt),
            slots: Vec::new(),
            grants_need_code: false,
            leases: Default::default(),
            bindings: Default::default(),
            generation: 0,
        };
        let totp_slot = seal_slot(
            &vault_id,
            &pass_key,
            device.as_ref(),
            &[],
            SlotKind::Totp,
            &opts.totp_label,
            &identity,
            Some(&opts.totp.secret_bytes()),
        )?;
        let totp_slot_id = totp_slot.id.clone();
        header.slots.push(totp_slot);
        let codes = factors::generate_recovery_codes();
        for (i, code) in codes.iter().enumerate() {
            let material = factors::parse_recovery_code(code)?;
            header.slots.push(seal_slot(
                &vault_id,
                &pass_key,
                device.as_ref(),
                &material,
                SlotKind::Recovery,
                &format!("recovery code {}", i + 1),
                &identity,
                None,
            )?);
        }
        let header_json = serde_json::to_string(&header)
            .map_err(|e| VaultError::Internal(format!("writing the header: {e}")))?;
        let header_mac = header_tag(&identity, &vault_id, opts.keystore, &header_json);

        // Device secret first: a crash before the row leaves only an unreferenced random key.
        keystore.put(&self.catalog, keystore::DEVICE_SECRET_ITEM, device.as_ref())?;
        keystore.put(&self.catalog, keystore::HEADER_SEALED_ITEM, b"1")?;
        self.catalog.create_vault(
            &VaultRow {
                vault_id: vault_id.clone(),
                keystore: opts.keystore,
                header: header_json,
                header_mac: Some(header_mac),
            },
            &now_rfc3339(),
        )?;
        self.audit_key = Some(MacKey::derive(device.as_ref(), &vault_id, AUDIT_INFO));
        self.anchor = None;
        self.unanchored = None;
        self.anchor_failed = false;
        self.recipient = Some(identity.to_public());
        self.store_throttle(0, 0)?;
        self.set_totp_last_step(&totp_slot_id, step)?;
        self.audit(&[(
            actor.clone(),
            AuditEvent {
                action: "init",
                target: None,
                outcome: "ok",
                detail: serde_json::json!({
                    "keystore": match opts.keystore { KeystoreKind::Keychain => "keychain", KeystoreKind::File => "file" },
                    "kdf_memory_kib": opts.kdf.memory_kib,
                    "kdf_iterations": opts.kdf.iterations,
                }),
            },
        )])?;
        Ok(Created {
            recovery_codes: codes,
            vault_id,
            key: UnlockedKey {
                identity,
                totp: vec![(totp_slot_id, opts.totp.secret_bytes())],
            },
        })
    }
}
